//! Field operations (DOMAIN.md 5.4): the tax bill and its payment (immediately, or
//! by summary payment against the general guarantee), inspection with transport
//! monitoring, the electronic release record and the gate.
//!
//! The field platform decides the release itself: duties secured or paid, and an
//! inspection, when one is ordered (RED lanes, immediate control), completed without
//! discrepancy. Every step that moves the declaration is reported to its lifecycle
//! through this platform's outbox, committed with the step.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use customs_common::{
    Error, Result,
    auth::Caller,
    background::Background,
    clients::{Peer, ServiceCredentials, peer_error},
    config::{InlandPolicySetting, InlandSiteSetting},
    day::today,
    money::{fen_to_string, to_fen},
    outbox::{Delivery, settle},
};
use customs_proto::{
    common::{ClearanceMode, DeclarationStage, Direction, Lane, TimelineNote},
    declaration::{
        Declaration, Enterprise, GetDeclarationRequest, GetEnterpriseRequest,
        declaration_service_client::DeclarationServiceClient,
        enterprise_service_client::EnterpriseServiceClient,
    },
    review::{
        EnqueueDeclarationRequest, ItemValue, TaskKind, review_service_client::ReviewServiceClient,
    },
};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};
use tonic::Code;

use crate::{
    domain::{
        calendar::WorkingCalendar,
        gate::{self, GateHold, Presented, ReleaseFacts},
        guarantee::GuaranteeReference,
        inspection::inland_monitoring,
        tax::{self, Item, ROUNDING, Tariff, TaxLine, summary_due_date},
        transit,
        transport::{EventKind, HoldReason, Move, Observation, Point, hold_for},
    },
    guarantees::{Guarantees, Reserve},
    outbox::{Job, Outbox, report},
    storage::operations::{
        EventRecord, HoldRecord, InspectionRecord, OperationsRepository, RecordedEvent,
        ReleaseRecord, TaxBillRecord,
    },
    storage::transits::TransitRepository,
};

/// Calls to the declaration platform, the source of truth for what was declared.
#[derive(Debug, Clone)]
pub struct DeclarationPeer {
    pub channel: Peer,
    pub credentials: ServiceCredentials,
}

impl DeclarationPeer {
    pub async fn declaration(&self, number: &str) -> Result<Declaration> {
        let request = GetDeclarationRequest {
            declaration_number: number.to_owned(),
        };
        match DeclarationServiceClient::new(self.channel.clone())
            .get_declaration(self.credentials.request(request)?)
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) if status.code() == Code::NotFound => Err(Error::not_found(
                "DECLARATION_NOT_FOUND",
                format!("no declaration {number} is on file"),
            )),
            Err(status) => Err(peer_error("declaration platform", &status)),
        }
    }

    pub async fn enterprise(&self, code: &str) -> Result<Enterprise> {
        let request = GetEnterpriseRequest {
            code: code.to_owned(),
        };
        EnterpriseServiceClient::new(self.channel.clone())
            .get_enterprise(self.credentials.request(request)?)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| peer_error("declaration platform", &status))
    }
}

/// How the duties are paid.
#[derive(Debug, Clone)]
pub enum Payment {
    Immediate,
    Summary {
        reference: GuaranteeReference,
        access_code: String,
    },
}

/// Where the enterprise wants the goods inspected.
#[derive(Debug, Clone)]
pub struct SiteChoice {
    pub inland: bool,
    pub site_code: String,
    pub route: Vec<Point>,
    pub vehicle_plate: String,
    pub lock_id: String,
    pub tracker_id: String,
}

/// A gate presenting a vehicle.
#[derive(Debug, Clone)]
pub struct GateCheck {
    pub request_id: String,
    pub gate_id: String,
    pub port_code: String,
    pub vehicle_plate: String,
    /// Each once: a PASS counts the exits it records against these.
    pub containers: Vec<String>,
    /// Each once.
    pub declarations: Vec<String>,
}

/// The gate's answer as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GateAnswer {
    pub pass: bool,
    /// (reason, declaration, container, details)
    pub holds: Vec<(String, String, String, String)>,
    pub decided_at_ms: i64,
}

/// The answer for the holds found (none: PASS).
fn gate_answer(found: &[GateHold]) -> GateAnswer {
    GateAnswer {
        pass: found.is_empty(),
        holds: found
            .iter()
            .map(|h| {
                (
                    h.reason.as_str().to_owned(),
                    h.declaration_number.clone(),
                    h.container_number.clone(),
                    h.details.clone(),
                )
            })
            .collect(),
        decided_at_ms: customs_common::outbox::now_millis(),
    }
}

/// How many times a gate check reads the release records when they change between its
/// reading them and its recording a PASS (a hold raised, or another gate letting the
/// goods out, meanwhile).
const GATE_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct FieldConfig {
    pub tariff: Arc<Tariff>,
    pub rates: Arc<BTreeMap<String, Decimal>>,
    pub waiver_below: Decimal,
    pub inland_policy: Arc<BTreeMap<String, InlandPolicySetting>>,
    pub inland_sites: Arc<Vec<InlandSiteSetting>>,
    pub corridor_metres: f64,
    pub calendar: Arc<WorkingCalendar>,
    /// Port code → whether it is a land port.
    pub ports: Arc<HashMap<String, bool>>,
    pub land_port_integrated_from: Date,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub repository: OperationsRepository,
    pub transits: TransitRepository,
    pub guarantees: Guarantees,
    pub outbox: Outbox,
    pub peer: DeclarationPeer,
    pub config: FieldConfig,
}

fn lane(declaration: &Declaration) -> &'static str {
    match declaration.lane() {
        Lane::Green => "GREEN",
        Lane::Yellow => "YELLOW",
        Lane::Red => "RED",
        Lane::Blue => "BLUE",
        Lane::Unspecified => "",
    }
}

fn fen(field: &str, amount: Decimal) -> Result<i64> {
    to_fen(field, amount).map_err(Error::from)
}

pub fn parse_lines(bill: &TaxBillRecord) -> Result<Vec<TaxLine>> {
    serde_json::from_str(&bill.lines)
        .map_err(|e| Error::internal(anyhow::anyhow!("tax bill {} is corrupt: {e}", bill.id)))
}

pub fn parse_route(inspection: &InspectionRecord) -> Result<Vec<Point>> {
    serde_json::from_str(&inspection.route).map_err(|e| {
        Error::internal(anyhow::anyhow!(
            "inspection {} is corrupt: {e}",
            inspection.id
        ))
    })
}

impl Field {
    /// A declaration the caller may see: customs roles any, an enterprise or broker
    /// only its own (another's is not found, as if it did not exist).
    pub async fn declaration_for(&self, caller: &Caller, number: &str) -> Result<Declaration> {
        let declaration = self.peer.declaration(number).await?;
        let content = declaration.content.as_ref();
        let parties = content.map_or(["", ""], |c| [&c.enterprise_code, &c.broker_code]);
        if !caller.may_see(&parties) {
            return Err(Error::not_found(
                "DECLARATION_NOT_FOUND",
                format!("no declaration {number} is on file"),
            ));
        }
        Ok(declaration)
    }

    /// The bill of a declaration the caller may see.
    pub async fn bill(&self, caller: &Caller, number: &str) -> Result<TaxBillRecord> {
        let bill = self
            .repository
            .bill(number)
            .await?
            .filter(|bill| caller.may_see(&[&bill.enterprise_code, &bill.broker_code]));
        bill.ok_or_else(|| {
            Error::not_found(
                "TAX_BILL_NOT_FOUND",
                format!("no tax bill for declaration {number}"),
            )
        })
    }

    /// Assesses the duties of a declaration ready for them, and secures them at once
    /// by summary payment when asked. Idempotent per declaration.
    pub async fn assess(
        &self,
        caller: &Caller,
        number: &str,
        payment: Payment,
    ) -> Result<TaxBillRecord> {
        if let Some(bill) = self.repository.bill(number).await? {
            return Ok(bill);
        }
        let declaration = self.declaration_for(caller, number).await?;
        let content = declaration.content.clone().unwrap_or_default();
        let ready = match declaration.stage() {
            DeclarationStage::LaneDecided => matches!(declaration.lane(), Lane::Green | Lane::Blue),
            DeclarationStage::Concluded | DeclarationStage::Inspection => true,
            _ => false,
        };
        if !ready {
            return Err(Error::failed_precondition(
                "NOT_READY_FOR_DUTIES",
                format!(
                    "duties are assessed after the lane decision (GREEN, BLUE) or the review; the declaration is {}",
                    declaration
                        .stage()
                        .as_str_name()
                        .trim_start_matches("DECLARATION_STAGE_")
                ),
            ));
        }
        let items: Vec<Item> = content
            .items
            .iter()
            .map(|item| {
                let value = item.declared_value.clone().unwrap_or_default();
                Item {
                    line_no: item.line_no,
                    hs_code: item.hs_code.clone(),
                    currency: value.currency_code,
                    amount: value.amount.parse().unwrap_or_default(),
                }
            })
            .collect();
        let config = &self.config;
        let assessment = tax::assess(
            &config.tariff,
            &config.rates,
            &items,
            content.direction() == Direction::Import,
            config.waiver_below,
        )?;
        let (total_duty_fen, total_vat_fen, total_fen) = (
            fen("total_duty", assessment.total_duty)?,
            fen("total_vat", assessment.total_vat)?,
            fen("total", assessment.total)?,
        );
        let now = OffsetDateTime::now_utc();
        let house = declaration.handling_house.clone();
        let mut bill = TaxBillRecord {
            declaration_number: number.to_owned(),
            id: format!("TB{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase(),
            enterprise_code: content.enterprise_code.clone(),
            broker_code: content.broker_code.clone(),
            house_code: house.clone(),
            tariff_version: config.tariff.version,
            payment_method: "IMMEDIATE".into(),
            state: "ASSESSED".into(),
            guarantee_reference: String::new(),
            lines: serde_json::to_string(&assessment.lines)
                .map_err(|e| Error::internal(anyhow::anyhow!(e)))?,
            total_duty_fen,
            total_vat_fen,
            total_fen,
            rounding: ROUNDING.into(),
            due_date: None,
            assessed_at: now,
            paid_at: None,
            payment_reference: String::new(),
        };
        let mut jobs = Vec::new();
        if let Payment::Summary {
            reference,
            access_code,
        } = &payment
        {
            // Reserved first (atomic across all houses); the bill records it.
            if total_fen > 0 {
                self.guarantees
                    .reserve(&Reserve {
                        reference: reference.clone(),
                        access_code: access_code.clone(),
                        holder: content.enterprise_code.clone(),
                        declaration_number: number.to_owned(),
                        amount_fen: total_fen,
                        house_code: house.clone(),
                    })
                    .await?;
            }
            bill.payment_method = "SUMMARY".into();
            bill.state = "SECURED".into();
            bill.guarantee_reference = reference.as_str().to_owned();
            let due = summary_due_date(today(), &self.config.calendar);
            if !self.config.calendar.covers(due.year()) {
                tracing::warn!(declaration = number, due = %due, "no working calendar for {}: the summary payment's due date counts Monday to Friday; add the year's holidays to field.calendar", due.year());
            }
            bill.due_date = Some(due);
            jobs.push(report(
                number,
                DeclarationStage::TaxSecured,
                &house,
                "duties secured by the general guarantee",
            ));
        } else if total_fen == 0 {
            bill.state = "PAID".into();
            bill.paid_at = Some(now);
            jobs.push(report(
                number,
                DeclarationStage::TaxSecured,
                &house,
                "no duties payable",
            ));
        }
        let (stored, created) = self.repository.insert_bill(&bill, &jobs).await?;
        if created {
            self.outbox.wake();
            tracing::info!(declaration = number, bill = %stored.id, total = %fen_to_string(stored.total_fen), method = %stored.payment_method, state = %stored.state, "duties assessed");
            if stored.state != "ASSESSED" {
                self.try_release(&declaration).await?;
            }
        }
        Ok(stored)
    }

    /// Records the payment of a bill (the whole amount). A summary-payment bill's
    /// reservation is released back to the guarantee.
    pub async fn pay(
        &self,
        number: &str,
        amount_fen: i64,
        reference: &str,
    ) -> Result<TaxBillRecord> {
        let bill = self.repository.bill(number).await?.ok_or_else(|| {
            Error::not_found(
                "TAX_BILL_NOT_FOUND",
                format!("no tax bill for declaration {number}"),
            )
        })?;
        if bill.state == "PAID" {
            // A retry: give the guarantee back again (idempotent), in case the first
            // attempt recorded the payment and then failed to.
            self.give_back(&bill).await?;
            return Ok(bill);
        }
        if amount_fen != bill.total_fen {
            return Err(Error::invalid(
                "amount",
                "AMOUNT_NOT_THE_BILL",
                format!(
                    "the bill is {} CNY; {} CNY was paid",
                    fen_to_string(bill.total_fen),
                    fen_to_string(amount_fen)
                ),
            ));
        }
        let jobs = if bill.state == "ASSESSED" {
            vec![report(
                number,
                DeclarationStage::TaxSecured,
                &bill.house_code,
                "duties paid",
            )]
        } else {
            Vec::new()
        };
        if self
            .repository
            .pay(number, &bill.state, reference, &jobs)
            .await?
        {
            self.outbox.wake();
            tracing::info!(declaration = number, amount = %fen_to_string(amount_fen), "duties paid");
        }
        self.give_back(&bill).await?;
        if bill.state == "ASSESSED" {
            let declaration = self.peer.declaration(number).await?;
            self.try_release(&declaration).await?;
        }
        self.repository
            .bill(number)
            .await?
            .ok_or_else(|| Error::internal(anyhow::anyhow!("tax bill of {number} vanished")))
    }

    /// A summary-payment bill, once paid, releases its reservation on the guarantee
    /// (idempotent) and may lift the holder's arrears.
    async fn give_back(&self, bill: &TaxBillRecord) -> Result<()> {
        if bill.payment_method != "SUMMARY" || bill.total_fen == 0 {
            return Ok(());
        }
        let reference =
            GuaranteeReference::parse("guarantee_reference", &bill.guarantee_reference)?;
        self.guarantees
            .release(&reference, &bill.declaration_number, &bill.house_code)
            .await?;
        self.clear_arrears(&bill.enterprise_code).await
    }

    /// Lifts the arrears restriction when the holder has no overdue bill left.
    async fn clear_arrears(&self, holder: &str) -> Result<()> {
        if self.repository.lift_arrears(holder, today()).await? {
            tracing::info!(holder, "overdue bills paid: summary tax payment open again");
        }
        Ok(())
    }

    /// Bars holders whose summary-payment bills are overdue (DOMAIN.md 7), every hour.
    /// Each bar is set only if the holder is still in arrears as it is written, so a
    /// payment made since the holders were listed is not undone.
    pub fn spawn_arrears_watch(&self, background: &Background) {
        let field = self.clone();
        let stop = background.clone();
        background.spawn(async move {
            while !stop.is_stopping() {
                let day = today();
                match field.repository.holders_in_arrears(day).await {
                    Ok(holders) => {
                        for holder in holders {
                            match field
                                .repository
                                .bar_for_arrears(&holder, day, "summary-payment duties overdue")
                                .await
                            {
                                Ok(true) => tracing::info!(%holder, "summary-payment duties overdue: summary tax payment barred"),
                                Ok(false) => {}
                                Err(error) => {
                                    tracing::error!(%holder, %error, "cannot record arrears");
                                }
                            }
                        }
                    }
                    Err(error) => tracing::error!(%error, "cannot look for arrears"),
                }
                stop.pause(Duration::from_secs(3_600)).await;
            }
        });
    }

    /// Releases the goods when everything is in place: duties secured or paid, an
    /// inspection completed without discrepancy when one is ordered (or the lane is
    /// RED), and for a TRANSIT declaration its transit written off. Idempotent.
    pub(crate) async fn try_release(&self, declaration: &Declaration) -> Result<bool> {
        let number = &declaration.declaration_number;
        let secured = self
            .repository
            .bill(number)
            .await?
            .is_some_and(|bill| bill.state != "ASSESSED");
        let inspected = match self.repository.inspection(number).await? {
            Some(inspection) => inspection.state == "COMPLETED" && !inspection.discrepancy,
            None => lane(declaration) != "RED",
        };
        if !secured || !inspected {
            return Ok(false);
        }
        let content = declaration.content.clone().unwrap_or_default();
        if !self
            .transit_cleared(number, content.clearance_mode())
            .await?
        {
            return Ok(false);
        }
        let release = ReleaseRecord {
            declaration_number: number.clone(),
            port_code: content.port_code.clone(),
            integrated_mode: content.clearance_mode() == ClearanceMode::RegionalIntegrated,
            released_at: OffsetDateTime::now_utc(),
            exited_at: None,
            exit_gate: String::new(),
            exit_vehicle: String::new(),
        };
        let house = declaration.handling_house.clone();
        let jobs = [report(
            number,
            DeclarationStage::Released,
            &house,
            "electronic release",
        )];
        let created = self
            .repository
            .release(&release, &content.container_numbers, &jobs)
            .await?;
        if created {
            self.outbox.wake();
            tracing::info!(declaration = %number, port = %release.port_code, containers = content.container_numbers.len(), "released");
        }
        Ok(created)
    }

    // Inspection.

    /// Orders an inspection (idempotent; a new round after a discrepancy).
    pub async fn order_inspection(
        &self,
        number: &str,
        reason: &str,
        house: &str,
    ) -> Result<InspectionRecord> {
        // The declaration must exist.
        self.peer.declaration(number).await?;
        let record = InspectionRecord {
            declaration_number: number.to_owned(),
            id: format!("IN{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase(),
            round: 1,
            state: "ORDERED".into(),
            reason: reason.to_owned(),
            ordered_by_house: house.to_owned(),
            site_kind: String::new(),
            site_code: String::new(),
            smart_lock: false,
            vehicle_tracking: false,
            route: "[]".into(),
            corridor_metres: 0.0,
            vehicle_plate: String::new(),
            lock_id: String::new(),
            tracker_id: String::new(),
            discrepancy: false,
            result_details: String::new(),
            ordered_at: OffsetDateTime::now_utc(),
            completed_at: None,
        };
        let jobs = [report(
            number,
            DeclarationStage::Inspection,
            house,
            "inspection ordered",
        )];
        if self.repository.order_inspection(&record, &jobs).await? {
            self.outbox.wake();
            tracing::info!(declaration = number, house, reason, "inspection ordered");
        }
        self.inspection(number).await
    }

    pub async fn inspection(&self, number: &str) -> Result<InspectionRecord> {
        self.repository.inspection(number).await?.ok_or_else(|| {
            Error::not_found(
                "INSPECTION_NOT_FOUND",
                format!("no inspection is ordered for declaration {number}"),
            )
        })
    }

    /// The enterprise chooses the port or an inland site of its home house; the
    /// credit-class policy decides whether inland is allowed and with what monitoring.
    pub async fn choose_site(
        &self,
        caller: &Caller,
        number: &str,
        choice: SiteChoice,
    ) -> Result<InspectionRecord> {
        let mut inspection = self.inspection(number).await?;
        let declaration = self.peer.declaration(number).await?;
        let content = declaration.content.clone().unwrap_or_default();
        if !caller.may_see(&[&content.enterprise_code, &content.broker_code]) {
            return Err(Error::not_found(
                "INSPECTION_NOT_FOUND",
                format!("no inspection is ordered for declaration {number}"),
            ));
        }
        if inspection.state != "ORDERED" {
            return Err(Error::failed_precondition(
                "SITE_ALREADY_CHOSEN",
                format!(
                    "the inspection is {}; its site was chosen",
                    inspection.state
                ),
            ));
        }
        if choice.inland {
            let enterprise = self.peer.enterprise(&content.enterprise_code).await?;
            let class = enterprise.class_code();
            let monitoring = inland_monitoring(&self.config.inland_policy, &class)?;
            let site = self
                .config
                .inland_sites
                .iter()
                .find(|site| site.code == choice.site_code);
            match site {
                None => {
                    return Err(Error::invalid(
                        "site_code",
                        "UNKNOWN_SITE",
                        format!("{} is not an inland supervised site", choice.site_code),
                    ));
                }
                Some(site) if site.house != enterprise.home_house => {
                    return Err(Error::invalid(
                        "site_code",
                        "NOT_AT_HOME_HOUSE",
                        format!(
                            "inland inspection is at a site of the enterprise's home house {}",
                            enterprise.home_house
                        ),
                    ));
                }
                Some(_) => {}
            }
            let mut violations = customs_common::Violations::new();
            if monitoring.smart_lock && choice.lock_id.trim().is_empty() {
                violations.push(
                    "lock_id",
                    "SMART_LOCK_REQUIRED",
                    format!("a {class} enterprise's inland move needs a smart lock"),
                );
            }
            if monitoring.vehicle_tracking {
                if choice.tracker_id.trim().is_empty() {
                    violations.push(
                        "tracker_id",
                        "TRACKING_REQUIRED",
                        format!("a {class} enterprise's inland move needs GPS/Beidou tracking"),
                    );
                }
                if choice.vehicle_plate.trim().is_empty() {
                    violations.push("vehicle_plate", "REQUIRED", "the tracked vehicle");
                }
                if choice.route.len() < 2 {
                    violations.push(
                        "route",
                        "ROUTE_REQUIRED",
                        "the declared route: at least its start and its end",
                    );
                }
            }
            violations.into_result()?;
            inspection.state = "IN_TRANSIT".into();
            inspection.site_kind = "INLAND".into();
            inspection.smart_lock = monitoring.smart_lock;
            inspection.vehicle_tracking = monitoring.vehicle_tracking;
            inspection.corridor_metres = self.config.corridor_metres;
        } else {
            if !choice.site_code.is_empty() && choice.site_code != content.port_code {
                return Err(Error::invalid(
                    "site_code",
                    "NOT_THE_PORT",
                    format!(
                        "inspection at the port is at {}, the declaration's port",
                        content.port_code
                    ),
                ));
            }
            inspection.state = "SITE_CHOSEN".into();
            inspection.site_kind = "PORT".into();
        }
        inspection.site_code = if choice.inland {
            choice.site_code.clone()
        } else {
            content.port_code.clone()
        };
        inspection.route = serde_json::to_string(&choice.route)
            .map_err(|e| Error::internal(anyhow::anyhow!(e)))?;
        inspection.vehicle_plate = choice.vehicle_plate.trim().to_owned();
        inspection.lock_id = choice.lock_id.trim().to_owned();
        inspection.tracker_id = choice.tracker_id.trim().to_owned();
        if !self.repository.choose_site(&inspection).await? {
            return Err(Error::failed_precondition(
                "SITE_ALREADY_CHOSEN",
                "the inspection's site was chosen meanwhile",
            ));
        }
        tracing::info!(declaration = number, site = %inspection.site_code, kind = %inspection.site_kind, lock = inspection.smart_lock, tracking = inspection.vehicle_tracking, "inspection site chosen");
        self.inspection(number).await
    }

    /// Records the result: no discrepancy releases (with duties secured); a
    /// discrepancy sends the declaration back to review.
    pub async fn record_result(
        &self,
        caller: &Caller,
        number: &str,
        discrepancy: bool,
        details: &str,
    ) -> Result<InspectionRecord> {
        let inspection = self.inspection(number).await?;
        if !matches!(inspection.state.as_str(), "SITE_CHOSEN" | "IN_TRANSIT") {
            return Err(Error::failed_precondition(
                "INSPECTION_NOT_UNDER_WAY",
                format!(
                    "the inspection is {}; a result needs a chosen site",
                    inspection.state
                ),
            ));
        }
        let jobs = if discrepancy {
            vec![
                report(
                    number,
                    DeclarationStage::UnderReview,
                    &inspection.ordered_by_house,
                    "inspection found a discrepancy",
                ),
                Job::BackToReview {
                    declaration_number: number.to_owned(),
                    inspection_round: inspection.round,
                },
            ]
        } else {
            Vec::new()
        };
        if !self
            .repository
            .complete_inspection(number, discrepancy, details, &jobs)
            .await?
        {
            return Err(Error::failed_precondition(
                "INSPECTION_NOT_UNDER_WAY",
                "the result was recorded meanwhile",
            ));
        }
        self.outbox.wake();
        tracing::info!(declaration = number, discrepancy, officer = %caller.subject, "inspection result recorded");
        if !discrepancy {
            let declaration = self.peer.declaration(number).await?;
            self.try_release(&declaration).await?;
        }
        self.inspection(number).await
    }

    // Transport monitoring.

    /// Records one event from a tracker or lock, and the hold it raises (none for an
    /// event recorded already: a device resending).
    pub async fn report_event(
        &self,
        event: EventRecord,
        kind: EventKind,
    ) -> Result<Option<HoldRecord>> {
        let (number, device) = (event.declaration_number.as_str(), event.device_id.as_str());
        let position = event
            .latitude
            .zip(event.longitude)
            .map(|(latitude, longitude)| Point {
                latitude,
                longitude,
            });
        let found = match self.repository.inspection_of_device(number, device).await? {
            Some(inspection) => {
                let route = parse_route(&inspection)?;
                hold_for(
                    &Observation {
                        kind,
                        position,
                        at_site: &event.at_site,
                    },
                    &Move {
                        destination: &inspection.site_code,
                        route: &route,
                        corridor_m: inspection.corridor_metres,
                    },
                )
            }
            // Not an inspection's device: a sealed transit's lock or tracker?
            None => match self.transits.sealed_with_device(number, device).await? {
                Some(_) => transit::hold_for(kind, &event.at_site),
                None => {
                    return Err(Error::failed_precondition(
                        "DEVICE_NOT_MONITORING",
                        format!("device {device} does not monitor declaration {number}'s move"),
                    ));
                }
            },
        };
        let hold = found.map(|(reason, details)| HoldRecord {
            id: format!("H{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase(),
            declaration_number: number.to_owned(),
            reason: reason.as_str().to_owned(),
            details,
            raised_at: OffsetDateTime::now_utc(),
            open: true,
            lifted_at: None,
            lifted_by: String::new(),
            lift_reason: String::new(),
        });
        match self.repository.record_event(&event, hold.as_ref()).await? {
            RecordedEvent::New { raised } => {
                if let Some(hold) = &raised {
                    tracing::warn!(declaration = number, device, reason = %hold.reason, details = %hold.details, "hold raised");
                }
                Ok(raised)
            }
            RecordedEvent::Repeat => {
                tracing::debug!(declaration = number, device, kind = %event.kind, "transport event resent; recorded already");
                Ok(None)
            }
        }
    }

    // The gate.

    /// PASS or HOLD from the release records alone; a PASS records the exit, never
    /// twice for the same goods, and never while a hold is open on them. A retried
    /// request id gets the first answer.
    pub async fn check_gate(&self, check: &GateCheck) -> Result<GateAnswer> {
        let decode = |stored: &str| {
            serde_json::from_str::<GateAnswer>(stored).map_err(|e| {
                Error::internal(anyhow::anyhow!(
                    "gate decision {} is corrupt: {e}",
                    check.request_id
                ))
            })
        };
        let encode = |answer: &GateAnswer| {
            serde_json::to_string(answer).map_err(|e| Error::internal(anyhow::anyhow!(e)))
        };
        let presented = Presented {
            port_code: &check.port_code,
            port_is_land: self
                .config
                .ports
                .get(&check.port_code)
                .copied()
                .unwrap_or(false),
            containers: &check.containers,
            declarations: &check.declarations,
        };
        let house = customs_common::codes::directly_under_house(&check.port_code);
        let reason = format!("exit through gate {}", check.gate_id);
        let reports: Vec<Job> = check
            .declarations
            .iter()
            .map(|number| report(number, DeclarationStage::Exited, &house, &reason))
            .collect();
        // A retry is evaluated again, but recording keeps the first answer (and undoes
        // any exit of this attempt), so it gets the first answer back. A PASS is
        // recorded only if, when it commits, none of the goods has left and no hold is
        // open on them; when something changed between reading the records and
        // recording, they are read again, so that the answer names what changed.
        let mut held = None;
        for _ in 0..GATE_ATTEMPTS {
            let releases = self.gate_releases(&check.declarations).await?;
            let found = gate::check(
                &presented,
                &releases,
                today(),
                self.config.land_port_integrated_from,
            );
            if !found.is_empty() {
                held = Some(found);
                break;
            }
            let exits = gate::exits(&presented, &releases);
            let (stored, exited) = self
                .repository
                .record_gate(
                    &check.request_id,
                    &check.gate_id,
                    &check.vehicle_plate,
                    &encode(&gate_answer(&[]))?,
                    Some(&exits),
                    &reports,
                )
                .await?;
            if exited {
                self.outbox.wake();
                tracing::info!(gate = %check.gate_id, vehicle = %check.vehicle_plate, declarations = ?check.declarations, containers = ?check.containers, "gate: PASS, exit recorded");
                return decode(&stored);
            }
            if let Some(first) = self.repository.gate_decision(&check.request_id).await? {
                // This request's retry won the race with itself: the first answer stands.
                return decode(&first);
            }
            tracing::debug!(gate = %check.gate_id, declarations = ?check.declarations, "gate: the release records changed while checking; reading them again");
        }
        // The holds found; or, when the records still changed under every attempt to
        // record a PASS, another gate letting the goods out.
        let found = held.unwrap_or_else(|| {
            vec![GateHold {
                reason: HoldReason::AlreadyExited,
                declaration_number: check.declarations.join(","),
                container_number: String::new(),
                details: "the goods left through another gate a moment ago".into(),
            }]
        });
        let decided = gate_answer(&found);
        let (stored, _) = self
            .repository
            .record_gate(
                &check.request_id,
                &check.gate_id,
                &check.vehicle_plate,
                &encode(&decided)?,
                None,
                &[],
            )
            .await?;
        tracing::info!(gate = %check.gate_id, vehicle = %check.vehicle_plate, holds = ?decided.holds, "gate: HOLD");
        decode(&stored)
    }

    /// What the release records say of the declarations presented, with their open
    /// holds.
    async fn gate_releases(&self, numbers: &[String]) -> Result<HashMap<String, ReleaseFacts>> {
        Ok(self
            .repository
            .gate_facts(numbers)
            .await?
            .into_iter()
            .map(|(number, fact)| {
                (
                    number,
                    ReleaseFacts {
                        port_code: fact.release.port_code,
                        integrated_mode: fact.release.integrated_mode,
                        containers: fact.containers,
                        exited_containers: fact.exited_containers,
                        exited: fact.release.exited_at.is_some(),
                        open_holds: fact.open_holds,
                    },
                )
            })
            .collect())
    }

    /// Delivers the outbox's hand-offs until the process stops.
    pub fn spawn_relay(&self, background: &Background, review: Peer) {
        let (peer, outbox) = (self.peer.clone(), self.outbox.clone());
        outbox.spawn_relay(background, move |job| {
            let (peer, review) = (peer.clone(), review.clone());
            async move { deliver(job, &peer, review).await }
        });
    }
}

async fn deliver(job: Job, peer: &DeclarationPeer, review: Peer) -> Result<Delivery> {
    let (receiver, outcome) = match &job {
        Job::ReportTransition {
            declaration_number,
            to_stage,
            house_code,
            reason,
        } => {
            let request = customs_proto::declaration::RecordTransitionRequest {
                request_id: String::new(),
                declaration_number: declaration_number.clone(),
                to_stage: DeclarationStage::from_str_name(to_stage).unwrap_or_default() as i32,
                house_code: house_code.clone(),
                reason: reason.clone(),
                lane: 0,
                review_sub_centre: String::new(),
                // Only whether it was recorded matters here.
                view: customs_proto::declaration::DeclarationView::Basic as i32,
            };
            let outcome = DeclarationServiceClient::new(peer.channel.clone())
                .record_transition(peer.credentials.request(request)?)
                .await
                .map(|_| ());
            ("declaration platform", outcome)
        }
        Job::NoteOnTimeline {
            declaration_number,
            note,
            house_code,
            reason,
            request_id,
        } => {
            let request = customs_proto::declaration::RecordTimelineNoteRequest {
                request_id: request_id.clone(),
                declaration_number: declaration_number.clone(),
                note: TimelineNote::from_str_name(&format!("TIMELINE_NOTE_{note}"))
                    .unwrap_or_default() as i32,
                house_code: house_code.clone(),
                reason: reason.clone(),
                view: customs_proto::declaration::DeclarationView::Basic as i32,
            };
            let outcome = DeclarationServiceClient::new(peer.channel.clone())
                .record_timeline_note(peer.credentials.request(request)?)
                .await
                .map(|_| ());
            ("declaration platform", outcome)
        }
        Job::BackToReview {
            declaration_number,
            inspection_round,
        } => {
            let declaration = match peer.declaration(declaration_number).await {
                Ok(declaration) => declaration,
                Err(error) if error.reason() == "PEER_UNAVAILABLE" => {
                    return Ok(Delivery::Retry(error.to_string()));
                }
                Err(error) => return Err(error),
            };
            let content = declaration.content.clone().unwrap_or_default();
            let request = EnqueueDeclarationRequest {
                request_id: format!("inspection-{declaration_number}-{inspection_round}"),
                declaration_number: declaration_number.clone(),
                lane: Lane::Red as i32,
                items: content
                    .items
                    .iter()
                    .map(|item| ItemValue {
                        line_no: item.line_no,
                        hs_code: item.hs_code.clone(),
                        declared_value: item.declared_value.clone(),
                    })
                    .collect(),
                kind: TaskKind::DeclarationReview as i32,
                change_request_id: String::new(),
            };
            let outcome = ReviewServiceClient::new(review)
                .enqueue_declaration(peer.credentials.request(request)?)
                .await
                .map(|_| ());
            ("review platform", outcome)
        }
    };
    Ok(settle(receiver, &job, outcome))
}
