//! Group commit for submissions: declarations arriving together share one transaction
//! (and one move of each sequence), so durable submissions are not capped by one
//! commit, and one wait on the sequence row, per declaration. Each caller still waits
//! for its own declaration to be committed before it answers.

use customs_common::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use super::declarations::{DeclarationRecord, DeclarationRepository, NewDeclaration};

const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<(DeclarationRecord, bool)>>;

#[derive(Debug, Clone)]
pub struct SubmissionWriter {
    sender: mpsc::Sender<(NewDeclaration, Reply)>,
}

impl SubmissionWriter {
    /// Starts the writer task; it ends when every handle is dropped.
    pub fn spawn(repository: DeclarationRepository) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(repository, receiver));
        Self { sender }
    }

    /// Numbers and stores a declaration; a repeated request id answers with the first.
    pub async fn submit(&self, new: NewDeclaration) -> Result<(DeclarationRecord, bool)> {
        let (reply, answer) = oneshot::channel();
        let stopped = || {
            Error::unavailable(
                "SUBMISSIONS_UNAVAILABLE",
                "the submission writer has stopped",
            )
        };
        self.sender
            .send((new, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(
    repository: DeclarationRepository,
    mut receiver: mpsc::Receiver<(NewDeclaration, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (declarations, replies): (Vec<NewDeclaration>, Vec<Reply>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        match repository.submit_batch(&declarations).await {
            Ok(answers) => {
                tracing::debug!(
                    size = declarations.len(),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "submission batch committed"
                );
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(error) => {
                // A concurrent duplicate from another replica, or a database fault:
                // each submission is retried on its own, so one cannot sink the others.
                tracing::warn!(declarations = declarations.len(), error = %error, "batched submission failed; submitting one by one");
                for (new, reply) in declarations.into_iter().zip(replies) {
                    let _ = reply.send(repository.submit(&new).await);
                }
            }
        }
    }
}
