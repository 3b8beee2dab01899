//! Electronic review, the same for all seven houses: logic checks over facts looked
//! up from the other platforms, screening against the indexed control instructions,
//! and the lane decision, recorded once per declaration so it can be replayed.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use customs_common::{
    Error, Result,
    background::Background,
    clients::{Peer, ServiceCredentials},
    config::{PortKindSetting, Settings},
    credit::CreditSchemes,
    error::FieldViolation,
    rulings::{RulingKind, RulingRecord},
};
use customs_proto::{
    common::DeclarationContent,
    declaration::{
        GetEnterpriseRequest, GetManifestRequest,
        enterprise_service_client::EnterpriseServiceClient,
        manifest_service_client::ManifestServiceClient,
    },
    review::{
        DrawDownLicenceRequest, GetLicenceDrawRequest, GetRulingRequest, ReturnLicenceDrawRequest,
        ruling_service_client::RulingServiceClient,
    },
};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::{
    domain::{
        checks::{EnterpriseFact, Facts, ManifestFact, PortFact, cited_rulings, logic_checks},
        screening::{
            ActiveInstructions, Decision, Instruction, InstructionIndex, SamplingRates,
            ScreenInput, ScreenItem, decide,
        },
    },
    storage::risk::{
        DecisionRecord, InstructionRecord, Parameters, RiskRepository, SetCounters,
        VersionedParameters,
    },
};

#[derive(Debug, Clone)]
pub struct Peers {
    pub declaration: Peer,
    pub review: Peer,
    pub credentials: ServiceCredentials,
}

#[derive(Debug, Clone)]
pub struct Risk {
    repository: RiskRepository,
    index: Arc<RwLock<LoadedIndex>>,
    /// The build that screening waits for before the index was ever built: one for all
    /// the screenings that arrive meanwhile.
    first_build: Arc<tokio::sync::OnceCell<()>>,
    /// Full builds of the index so far.
    full_builds: Arc<AtomicU64>,
    settings: Arc<Settings>,
    schemes: Arc<CreditSchemes>,
    peers: Peers,
}

/// A failed call to another platform: retryable when the peer is down or slow, an
/// internal error (logged with its cause) when the peer refused us.
use customs_common::clients::peer_error;

/// The sampling rates `record` was drawn against, when `parameters` are the version it
/// was decided under.
pub fn rates_in_force(
    record: &DecisionRecord,
    parameters: &VersionedParameters,
) -> Option<SamplingRates> {
    (parameters.version == record.parameters_version)
        .then(|| {
            parameters
                .parameters
                .sampling
                .get(&record.credit_class)
                .cloned()
        })
        .flatten()
}

fn now_seconds() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The index in use, and the instruction set it stands for.
#[derive(Debug)]
struct LoadedIndex {
    index: ActiveInstructions,
    /// The instruction set's counters it was built from (or brought up to by this
    /// replica's own changes).
    fingerprint: SetCounters,
    /// When it was last built in full.
    loaded_at: Instant,
}

/// An instruction this replica has just issued or revoked.
#[derive(Debug)]
enum LocalChange {
    Issued(Box<Instruction>),
    Revoked(String),
}

/// The most changes applied to an index without building it in full again.
const MAX_LOCAL_CHANGES: usize = 1_000;

/// The fingerprint of the empty index a replica starts with.
const NOT_LOADED: SetCounters = (-1, -1);

/// How often the index is checked against the database (instructions issued or revoked
/// through other replicas).
const INDEX_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How often it is rebuilt even when nothing was issued or revoked: instructions past
/// their validity then leave it (until then screening skips them by their window).
const INDEX_REBUILD_EVERY: Duration = Duration::from_secs(300);

impl Risk {
    pub fn new(
        repository: RiskRepository,
        settings: Arc<Settings>,
        schemes: Arc<CreditSchemes>,
        peers: Peers,
    ) -> Self {
        Self {
            repository,
            index: Arc::new(RwLock::new(LoadedIndex {
                index: ActiveInstructions::default(),
                fingerprint: NOT_LOADED,
                loaded_at: Instant::now(),
            })),
            first_build: Arc::new(tokio::sync::OnceCell::new()),
            full_builds: Arc::new(AtomicU64::new(0)),
            settings,
            schemes,
            peers,
        }
    }

    /// The credit schemes whose classes instructions and sampling rates name.
    pub fn schemes(&self) -> &CreditSchemes {
        &self.schemes
    }

    /// Keeps the instruction index fresh: built now, then checked every few seconds and
    /// rebuilt when instructions were issued or revoked (through any replica), or when
    /// it is five minutes old. A check reads the instruction set's counters (one row); a
    /// rebuild reads every active instruction, which at 100,000 is worth avoiding
    /// every five seconds.
    pub fn spawn_index_refresh(&self, background: &Background) {
        let risk = self.clone();
        let stop = background.clone();
        background.spawn(async move {
            while !stop.is_stopping() {
                if let Err(error) = risk.refresh_index_if_changed().await {
                    tracing::error!(error = %error, "cannot refresh the control instruction index");
                }
                stop.pause(INDEX_CHECK_EVERY).await;
            }
        });
    }

    /// Rebuilds the index when the instruction set changed or the index is old; whether
    /// it did.
    pub async fn refresh_index_if_changed(&self) -> Result<bool> {
        let fingerprint = self.repository.instruction_set_counters().await?;
        let current = {
            let loaded = self.loaded()?;
            (loaded.fingerprint, loaded.loaded_at.elapsed())
        };
        if current.0 == fingerprint && current.1 < INDEX_REBUILD_EVERY {
            return Ok(false);
        }
        self.rebuild_index(fingerprint).await?;
        Ok(true)
    }

    /// Rebuilds the index now from every active instruction.
    pub async fn refresh_index(&self) -> Result<()> {
        let fingerprint = self.repository.instruction_set_counters().await?;
        self.rebuild_index(fingerprint).await
    }

    /// Applies an instruction this replica has just issued or revoked (committed, which
    /// left the instruction set's counters at `fingerprint`), so that the next screening
    /// applies it, without reading every instruction again. That holds only when the
    /// counters moved by exactly this change since the index was loaded; otherwise
    /// (changes through other replicas too, a race with a rebuild, many changes piled
    /// up) the index is rebuilt in full.
    async fn apply_local_change(
        &self,
        change: LocalChange,
        fingerprint: SetCounters,
    ) -> Result<()> {
        let (index, loaded) = {
            let loaded = self.loaded()?;
            (loaded.index.clone(), loaded.fingerprint)
        };
        let expected = match &change {
            LocalChange::Issued(_) => (loaded.0 + 1, loaded.1),
            LocalChange::Revoked(_) => (loaded.0, loaded.1 + 1),
        };
        if loaded == NOT_LOADED || fingerprint != expected || index.changes() >= MAX_LOCAL_CHANGES {
            return self.rebuild_index(fingerprint).await;
        }
        let changed = match change {
            LocalChange::Issued(instruction) => index.issue(*instruction),
            LocalChange::Revoked(id) => index.revoke(&id),
        };
        {
            let mut current = self.loaded_mut()?;
            if current.fingerprint == loaded {
                current.index = changed;
                current.fingerprint = fingerprint;
                return Ok(());
            }
        }
        self.refresh_index().await
    }

    /// `fingerprint` is read before the instructions: a change after it is caught by
    /// the next check at worst.
    async fn rebuild_index(&self, fingerprint: SetCounters) -> Result<()> {
        let active = self.repository.active_instructions(now_seconds()).await?;
        let started = Instant::now();
        let count = active.len();
        // 20 ms at 100,000 instructions: not on a worker that serves calls.
        let index = tokio::task::spawn_blocking(move || InstructionIndex::new(active))
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("building the instruction index: {e}")))?;
        self.full_builds.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            instructions = count,
            build_ms = started.elapsed().as_millis() as u64,
            issued = fingerprint.0,
            revoked = fingerprint.1,
            "instruction index built"
        );
        let index = ActiveInstructions::from(index);
        let mut loaded = self.loaded_mut()?;
        // Two rebuilds racing: the one that saw fewer instructions issued or revoked
        // does not replace the other's.
        let (issued, revoked) = loaded.fingerprint;
        if fingerprint.0 >= issued && fingerprint.1 >= revoked {
            *loaded = LoadedIndex {
                index,
                fingerprint,
                loaded_at: Instant::now(),
            };
        }
        Ok(())
    }

    /// How many times the index was built from every active instruction.
    pub fn full_index_builds(&self) -> u64 {
        self.full_builds.load(Ordering::Relaxed)
    }

    fn loaded(&self) -> Result<std::sync::RwLockReadGuard<'_, LoadedIndex>> {
        self.index
            .read()
            .map_err(|_| Error::internal(anyhow::anyhow!("index lock poisoned")))
    }

    fn loaded_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, LoadedIndex>> {
        self.index
            .write()
            .map_err(|_| Error::internal(anyhow::anyhow!("index lock poisoned")))
    }

    /// The index to screen with. Before the first build has finished (just after
    /// start-up, when the relay may already be delivering hand-offs that waited), it is
    /// built here: a decision made against no instructions would stand for good.
    pub async fn current_index(&self) -> Result<ActiveInstructions> {
        if self.loaded()?.fingerprint == NOT_LOADED {
            self.first_build
                .get_or_try_init(|| self.refresh_index())
                .await?;
        }
        Ok(self.loaded()?.index.clone())
    }

    /// The parameters in force: the latest version, or the configured defaults (version 0).
    pub async fn parameters(&self) -> Result<VersionedParameters> {
        if let Some(stored) = self.repository.parameters().await? {
            return Ok(stored);
        }
        let risk = &self.settings.risk;
        Ok(VersionedParameters {
            version: 0,
            parameters: Parameters {
                sampling: risk
                    .sampling
                    .iter()
                    .map(|(class, rates)| {
                        (
                            class.clone(),
                            SamplingRates {
                                red: rates.red,
                                yellow: rates.yellow,
                                blue: rates.blue,
                            },
                        )
                    })
                    .collect(),
                sampling_seed: risk.sampling_seed.clone(),
                land_port_integrated_from: risk.land_port_integrated_from.clone(),
            },
            updated_at: OffsetDateTime::UNIX_EPOCH,
            updated_by: "configuration".to_owned(),
        })
    }

    pub async fn update_parameters(
        &self,
        expected_version: i64,
        parameters: Parameters,
        by: &str,
    ) -> Result<VersionedParameters> {
        if !self
            .repository
            .put_parameters(expected_version, &parameters, by)
            .await?
        {
            return Err(Error::failed_precondition(
                "PARAMETERS_VERSION_CONFLICT",
                format!(
                    "the risk parameters are no longer at version {expected_version}; read them again"
                ),
            ));
        }
        tracing::info!(
            version = expected_version + 1,
            by,
            "risk parameters updated"
        );
        self.parameters().await
    }

    async fn enterprise(&self, code: &str) -> Result<Option<EnterpriseFact>> {
        if code.is_empty() {
            return Ok(None);
        }
        let request = self.peers.credentials.request(GetEnterpriseRequest {
            code: code.to_owned(),
        })?;
        match EnterpriseServiceClient::new(self.peers.declaration.clone())
            .get_enterprise(request)
            .await
        {
            Ok(found) => {
                let enterprise = found.into_inner();
                Ok(Some(EnterpriseFact {
                    is_broker: enterprise.kind()
                        == customs_proto::declaration::EnterpriseKind::Broker,
                    suspended: enterprise.suspended,
                    credit_class: enterprise.class_code(),
                    home_house: enterprise.home_house,
                }))
            }
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                Ok(None)
            }
            Err(status) => Err(peer_error("enterprise registry", &status)),
        }
    }

    async fn manifest(&self, bill: &str) -> Result<Option<ManifestFact>> {
        if bill.trim().is_empty() {
            return Ok(None);
        }
        let request = self.peers.credentials.request(GetManifestRequest {
            bill_of_lading: bill.trim().to_owned(),
        })?;
        match ManifestServiceClient::new(self.peers.declaration.clone())
            .get_manifest(request)
            .await
        {
            Ok(found) => {
                let manifest = found.into_inner();
                Ok(Some(ManifestFact {
                    import: manifest.direction() == customs_proto::common::Direction::Import,
                    port_code: manifest.port_code,
                    containers: manifest
                        .containers
                        .into_iter()
                        .map(|c| c.container_number)
                        .collect(),
                }))
            }
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(peer_error("manifests", &status)),
        }
    }

    async fn ruling(&self, id: &str) -> Result<Option<(RulingRecord, Option<i64>)>> {
        let request = self.peers.credentials.request(GetRulingRequest {
            ruling_id: id.to_owned(),
        })?;
        match RulingServiceClient::new(self.peers.review.clone())
            .get_ruling(request)
            .await
        {
            Ok(found) => Ok(Some(ruling_record(found.into_inner()))),
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                Ok(None)
            }
            Err(status) => Err(peer_error("rulings", &status)),
        }
    }

    async fn facts(
        &self,
        content: &DeclarationContent,
        date: Date,
        parameters: &Parameters,
    ) -> Result<Facts> {
        let mut rulings = HashMap::new();
        for id in cited_rulings(content) {
            if let Some(found) = self.ruling(&id).await? {
                rulings.insert(id, found);
            }
        }
        Ok(Facts {
            declarant: self.enterprise(&content.enterprise_code).await?,
            broker: self.enterprise(&content.broker_code).await?,
            port: self
                .settings
                .ports
                .iter()
                .find(|port| port.code == content.port_code)
                .map(|port| PortFact {
                    is_land: port.kind == PortKindSetting::Land,
                    house: port.house.clone(),
                }),
            manifest: self.manifest(&content.bill_of_lading).await?,
            rulings,
            land_port_integrated_from: customs_common::day::parse_iso_day(
                &parameters.land_port_integrated_from,
            )
            .map_err(|e| Error::internal(anyhow::anyhow!("land_port_integrated_from: {e}")))?,
            date,
        })
    }

    /// The logic checks alone: every violation. For a declaration already made
    /// (`drawn_by`: its proposed modification), what it holds of each licence it cites
    /// counts as left for it: that draw is given back before its new content draws.
    pub async fn check(
        &self,
        content: &DeclarationContent,
        date: Date,
        drawn_by: Option<&str>,
    ) -> Result<Vec<FieldViolation>> {
        let parameters = self.parameters().await?.parameters;
        let mut facts = self.facts(content, date, &parameters).await?;
        if let Some(number) = drawn_by {
            for (id, (_, remaining)) in facts.rulings.iter_mut() {
                if let Some(remaining) = remaining {
                    *remaining += self.licence_draw(id, number).await?;
                }
            }
        }
        Ok(logic_checks(content, &facts))
    }

    /// What a declaration holds of a licence, in thousandths.
    async fn licence_draw(&self, id: &str, number: &str) -> Result<i64> {
        let request = self.peers.credentials.request(GetLicenceDrawRequest {
            ruling_id: id.to_owned(),
            declaration_number: number.to_owned(),
        })?;
        let draw = RulingServiceClient::new(self.peers.review.clone())
            .get_licence_draw(request)
            .await
            .map_err(|status| peer_error("licence draws", &status))?
            .into_inner();
        quantity_milli(&draw.quantity).ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "licence {id}: draw of {number} is not a quantity: {}",
                draw.quantity
            ))
        })
    }

    /// Checks, screens and decides the lane, once per revision of a declaration (0 as
    /// submitted, n after its n-th approved modification): a repeated call returns the
    /// first decision. With it, the sampling rates it was drawn against when those are
    /// still the parameters in force.
    pub async fn screen(
        &self,
        declaration_number: &str,
        revision: i32,
        content: &DeclarationContent,
        date: Date,
    ) -> Result<(DecisionRecord, Option<SamplingRates>)> {
        if let Some(existing) = self
            .repository
            .decision_for(declaration_number, revision)
            .await?
        {
            let rates = rates_in_force(&existing, &self.parameters().await?);
            return Ok((existing, rates));
        }
        let versioned = self.parameters().await?;
        let facts = self.facts(content, date, &versioned.parameters).await?;
        let violations = logic_checks(content, &facts);
        // A licence's balance read above is only a preview: the draw below decides,
        // atomically across all houses. (Read again after this declaration drew, on a
        // retry, it would count the declaration's own draw against it.)
        if violations
            .iter()
            .any(|v| v.reason != LICENCE_QUANTITY_EXCEEDED)
        {
            if revision > 0 {
                // A modified declaration still holds what its earlier content drew of
                // the licences this content cites (it draws in place of it): refused,
                // it gives that back.
                let cited = content.licence_quantities();
                self.give_back_licences(declaration_number, cited.keys().map(String::as_str))
                    .await?;
            }
            tracing::info!(
                declaration = declaration_number,
                violations = violations.len(),
                "declaration refused by the logic checks"
            );
            return Err(Error::InvalidArgument(violations));
        }
        self.draw_licences(declaration_number, revision, content)
            .await?;
        let credit_class = facts.declarant.map(|d| d.credit_class).unwrap_or_default();
        let input = screen_input(
            declaration_number,
            content,
            &credit_class,
            &self.settings.exchange_rates,
        );
        let no_sampling = SamplingRates {
            red: Decimal::ZERO,
            yellow: Decimal::ZERO,
            blue: Decimal::ZERO,
        };
        let rates = versioned
            .parameters
            .sampling
            .get(&credit_class)
            .unwrap_or_else(|| {
                // Parameters stored before a credit scheme added the class.
                tracing::warn!(
                    declaration = declaration_number,
                    credit_class = %credit_class,
                    parameters_version = versioned.version,
                    "the risk parameters have no sampling rates for this credit class: not sampled"
                );
                &no_sampling
            });
        let index = self.current_index().await?;
        let decision: Decision = decide(&index, &input, &versioned.parameters.sampling_seed, rates);
        let record = DecisionRecord {
            decision_id: format!("D{}", uuid::Uuid::new_v4().simple()).to_ascii_uppercase(),
            declaration_number: declaration_number.to_owned(),
            revision,
            decision,
            parameters_version: versioned.version,
            credit_class,
            decided_at: customs_common::db::now(),
        };
        let stored = self.repository.insert_decision(&record).await?;
        tracing::info!(declaration = declaration_number, decision = %stored.decision_id, lane = stored.decision.lane.as_str(), hits = stored.decision.hits.len(), "lane decided");
        let rates = rates_in_force(&stored, &versioned);
        Ok((stored, rates))
    }

    /// Draws every licence the declaration cites down by what its items cite of it
    /// (summed per licence), once per declaration: what makes a licence's quantity
    /// serve one declaration only, whichever houses declare against it at once. When a
    /// licence has not enough left, what the declaration drew of the others is given
    /// back and it is refused, the citing items' quantities named. A retry finds its
    /// own draws already made. A modified declaration's revision draws in place of
    /// what its earlier content drew; refused, it gives those back as well.
    async fn draw_licences(
        &self,
        number: &str,
        revision: i32,
        content: &DeclarationContent,
    ) -> Result<()> {
        let citations = content.licence_quantities();
        let house = customs_common::codes::directly_under_house(&content.declaring_office);
        let mut drawn: Vec<&str> = Vec::with_capacity(citations.len());
        let mut violations = Vec::new();
        for (id, (quantity, fields)) in &citations {
            let request = self.peers.credentials.request(DrawDownLicenceRequest {
                request_id: if revision == 0 {
                    format!("{number}:{id}")
                } else {
                    format!("{number}:r{revision}:{id}")
                },
                ruling_id: id.clone(),
                quantity: quantity.normalize().to_string(),
                declaration_number: number.to_owned(),
                house_code: house.clone(),
                // A revision's draw takes the place of the earlier content's, whose
                // quantity counts as left for it (the declaration platform gave back
                // only what the new content no longer cites).
                replaces_earlier_draw: revision > 0,
            })?;
            match RulingServiceClient::new(self.peers.review.clone())
                .draw_down_licence(request)
                .await
            {
                Ok(_) => drawn.push(id),
                Err(status) if status.code() == Code::FailedPrecondition => {
                    if revision > 0 {
                        // Still holding the earlier content's draw: a refused revision
                        // gives it back with the rest.
                        drawn.push(id);
                    }
                    let reason = status
                        .get_details_error_info()
                        .map(|info| info.reason)
                        .unwrap_or_default();
                    let reason = match reason.as_str() {
                        "RULING_REVOKED" => "RULING_REVOKED",
                        "RULING_NOT_IN_FORCE" => "RULING_NOT_IN_FORCE",
                        "RULING_NOT_A_LICENCE" => "RULING_KIND_MISMATCH",
                        _ => LICENCE_QUANTITY_EXCEEDED,
                    };
                    violations.extend(fields.iter().map(|field| {
                        FieldViolation::new(field.clone(), reason, status.message().to_owned())
                    }));
                }
                Err(status) => return Err(peer_error("licence draw-down", &status)),
            }
        }
        if violations.is_empty() {
            if !drawn.is_empty() {
                tracing::info!(declaration = number, licences = ?drawn, "licences drawn down");
            }
            return Ok(());
        }
        self.give_back_licences(number, drawn).await?;
        tracing::info!(
            declaration = number,
            violations = violations.len(),
            "declaration refused: a cited licence cannot be drawn"
        );
        Err(Error::InvalidArgument(violations))
    }

    /// Gives back what declaration `number` holds of each licence in `ids` (nothing
    /// where it holds none, or no such ruling is registered).
    async fn give_back_licences(
        &self,
        number: &str,
        ids: impl IntoIterator<Item = &str>,
    ) -> Result<()> {
        for id in ids {
            let request = self.peers.credentials.request(ReturnLicenceDrawRequest {
                ruling_id: id.to_owned(),
                declaration_number: number.to_owned(),
            })?;
            match RulingServiceClient::new(self.peers.review.clone())
                .return_licence_draw(request)
                .await
            {
                Ok(_) => {}
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => return Err(peer_error("licence draw give-back", &status)),
            }
        }
        Ok(())
    }

    pub async fn decision(&self, decision_id: &str) -> Result<DecisionRecord> {
        self.repository.decision(decision_id).await?.ok_or_else(|| {
            Error::not_found("DECISION_NOT_FOUND", format!("no decision {decision_id}"))
        })
    }

    pub async fn create_instruction(
        &self,
        request_id: &str,
        instruction: Instruction,
    ) -> Result<InstructionRecord> {
        let (record, created) = self
            .repository
            .insert_instruction(request_id, &instruction)
            .await?;
        if let Some(counters) = created {
            tracing::info!(instruction = %record.instruction.id, lane = record.instruction.lane.as_str(), house = %record.instruction.issuing_house, "control instruction issued");
            self.apply_local_change(
                LocalChange::Issued(Box::new(record.instruction.clone())),
                counters,
            )
            .await?;
        }
        Ok(record)
    }

    pub async fn instruction(&self, id: &str) -> Result<InstructionRecord> {
        self.repository.instruction(id).await?.ok_or_else(|| {
            Error::not_found(
                "INSTRUCTION_NOT_FOUND",
                format!("no control instruction {id}"),
            )
        })
    }

    pub async fn instructions(
        &self,
        revoked: Option<bool>,
        house: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<InstructionRecord>> {
        self.repository
            .instructions(revoked, house, after, limit)
            .await
    }

    /// Revokes an instruction. Revoking one already revoked (a retry) changes nothing
    /// and returns it as it was revoked.
    pub async fn revoke_instruction(&self, id: &str, reason: &str) -> Result<InstructionRecord> {
        if let Some(counters) = self.repository.revoke_instruction(id, reason).await? {
            tracing::info!(instruction = id, reason, "control instruction revoked");
            self.apply_local_change(LocalChange::Revoked(id.to_owned()), counters)
                .await?;
        }
        self.instruction(id).await
    }
}

const LICENCE_QUANTITY_EXCEEDED: &str = "LICENCE_QUANTITY_EXCEEDED";

/// The declaration as screening sees it; unit values in CNY at the configured rates.
pub fn screen_input(
    declaration_number: &str,
    content: &DeclarationContent,
    credit_class: &str,
    rates: &std::collections::BTreeMap<String, Decimal>,
) -> ScreenInput {
    ScreenInput {
        declaration_number: declaration_number.to_owned(),
        enterprise_code: content.enterprise_code.clone(),
        port_code: content.port_code.clone(),
        trade_mode: content.trade_mode.clone(),
        clearance_mode: content
            .clearance_mode()
            .as_str_name()
            .trim_start_matches("CLEARANCE_MODE_")
            .to_owned(),
        credit_class: credit_class.to_owned(),
        items: content
            .items
            .iter()
            .map(|item| {
                let value = item.declared_value.clone().unwrap_or_default();
                let unit_value_cny = match (
                    Decimal::from_str(value.amount.trim()),
                    Decimal::from_str(item.quantity.trim()),
                    rates.get(&value.currency_code),
                ) {
                    (Ok(amount), Ok(quantity), Some(rate)) if !quantity.is_zero() => {
                        Some(amount / quantity * rate)
                    }
                    _ => None,
                };
                ScreenItem {
                    line_no: item.line_no,
                    hs_code: item.hs_code.clone(),
                    origin_country: item.origin_country.clone(),
                    unit_value_cny,
                }
            })
            .collect(),
        at: now_seconds(),
    }
}

/// A ruling as the review platform answers it, for the citation check.
/// A licence quantity as the review platform writes it, in thousandths.
fn quantity_milli(text: &str) -> Option<i64> {
    Decimal::from_str(text)
        .ok()
        .and_then(|q| i64::try_from(q * Decimal::ONE_THOUSAND).ok())
}

fn ruling_record(ruling: customs_proto::review::Ruling) -> (RulingRecord, Option<i64>) {
    use customs_proto::common::RulingKind as P;
    let kind = match ruling.kind() {
        P::PricePreReview => RulingKind::PricePreReview,
        P::OriginPreDetermination => RulingKind::OriginPreDetermination,
        P::Licence => RulingKind::Licence,
        P::ProfessionalDetermination => RulingKind::ProfessionalDetermination,
        P::TemporaryAdmission => RulingKind::TemporaryAdmission,
        P::PreClassification | P::Unspecified => RulingKind::PreClassification,
    };
    let day = |date: Option<&customs_proto::common::Date>| {
        date.map_or(0, |d| d.year * 10_000 + d.month * 100 + d.day)
    };
    let remaining = quantity_milli(&ruling.quantity_remaining);
    let record = RulingRecord {
        kind,
        issuing_house: ruling.issuing_house,
        holder: ruling.holder,
        subject: ruling.subject,
        hs_code: (!ruling.hs_code.is_empty()).then_some(ruling.hs_code),
        unit_price: ruling.unit_price.and_then(|price| {
            Decimal::from_str(&price.amount)
                .ok()
                .map(|amount| (price.currency_code, amount))
        }),
        origin_country: (!ruling.origin_country.is_empty()).then_some(ruling.origin_country),
        quantity_granted_milli: quantity_milli(&ruling.quantity_granted),
        unit: (!ruling.unit.is_empty()).then_some(ruling.unit),
        valid_from: day(ruling.valid_from.as_ref()),
        valid_until: day(ruling.valid_until.as_ref()),
        revoked: ruling.status == customs_proto::review::RulingStatus::Revoked as i32,
        replaced_by: (!ruling.replaced_by.is_empty()).then_some(ruling.replaced_by),
        revocation_reason: (!ruling.revocation_reason.is_empty())
            .then_some(ruling.revocation_reason),
        id: ruling.ruling_id,
    };
    (record, remaining)
}
