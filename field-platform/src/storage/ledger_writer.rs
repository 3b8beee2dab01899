//! Group commit for the guarantee ledger: reservations arriving together from many
//! houses share one transaction, so durable throughput is not capped by one commit
//! (one fsync) per reservation. Each caller still waits for its own line to be
//! committed before it answers.

use customs_common::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use super::guarantees::{EntryKind, GuaranteeRepository, LedgerEntry};

/// The most lines one transaction carries.
const MAX_BATCH: usize = 256;

type Line = (String, EntryKind, LedgerEntry);

struct Pending {
    line: Line,
    reply: oneshot::Sender<Result<bool>>,
}

#[derive(Debug, Clone)]
pub struct LedgerWriter {
    sender: mpsc::Sender<Pending>,
}

impl LedgerWriter {
    /// Starts the writer task; it ends when every handle is dropped.
    pub fn spawn(repository: GuaranteeRepository) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(repository, receiver));
        Self { sender }
    }

    /// Records one line durably; `false` when it was already recorded (a retry).
    pub async fn record(
        &self,
        reference: &str,
        kind: EntryKind,
        entry: LedgerEntry,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            line: (reference.to_owned(), kind, entry),
            reply,
        };
        let stopped = || {
            Error::unavailable(
                "LEDGER_UNAVAILABLE",
                "the guarantee ledger writer has stopped",
            )
        };
        self.sender.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(repository: GuaranteeRepository, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (lines, replies): (Vec<Line>, Vec<_>) =
            batch.drain(..).map(|p| (p.line, p.reply)).unzip();
        match repository.record_all(&lines).await {
            Ok(inserted) => {
                for (reply, inserted) in replies.into_iter().zip(inserted) {
                    let _ = reply.send(Ok(inserted));
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(lines = lines.len(), error = %message, "ledger batch failed");
                for reply in replies {
                    let _ = reply.send(Err(Error::internal(anyhow::anyhow!(
                        "ledger batch failed: {message}"
                    ))));
                }
            }
        }
    }
}
