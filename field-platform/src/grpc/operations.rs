//! `customs.field.v1` TaxService, InspectionService, TransportService and GateService.

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::{is_container_number, parse_declaration_number},
    money::{parse_amount, to_fen},
};
use customs_proto::{
    common::Money,
    convert::{instant, timestamp},
    field::{
        self as pb, gate_service_server::GateService as GateServiceApi,
        inspection_service_server::InspectionService as InspectionServiceApi,
        tax_service_server::TaxService as TaxServiceApi,
        transport_service_server::TransportService as TransportServiceApi,
    },
};
use futures::StreamExt as _;
use time::OffsetDateTime;
use tonic::{Request, Response, Status, Streaming};

use super::cny;
use crate::{
    domain::{
        guarantee::GuaranteeReference,
        transport::{EventKind, Point},
    },
    operations::{Field, GateAnswer, GateCheck, Payment, SiteChoice, parse_lines, parse_route},
    render::render_tax_bill,
    storage::operations::{EventRecord, HoldRecord, InspectionRecord, TaxBillRecord},
};

#[derive(Debug, Clone)]
pub struct FieldService {
    field: Field,
}

impl FieldService {
    pub fn new(field: Field) -> Self {
        Self { field }
    }

    pub(super) fn field(&self) -> &Field {
        &self.field
    }
}

fn number(field: &str, value: &str) -> Result<String, Status> {
    Ok(parse_declaration_number(field, value).map_err(Error::from)?)
}

fn bill_message(bill: TaxBillRecord) -> Result<pb::TaxBill, Status> {
    let lines = parse_lines(&bill)?;
    Ok(pb::TaxBill {
        tax_bill_id: bill.id,
        declaration_number: bill.declaration_number,
        lines: lines
            .into_iter()
            .map(|line| pb::TaxLine {
                line_no: line.line_no,
                hs_code: line.hs_code,
                declared_value: Some(Money {
                    currency_code: line.currency,
                    amount: line.declared_amount.to_string(),
                }),
                customs_value_cny: Some(Money {
                    currency_code: "CNY".into(),
                    amount: line.customs_value.to_string(),
                }),
                duty_rate: line.duty_rate.normalize().to_string(),
                duty: Some(Money {
                    currency_code: "CNY".into(),
                    amount: format!("{:.2}", line.duty),
                }),
                vat_rate: line.vat_rate.normalize().to_string(),
                vat: Some(Money {
                    currency_code: "CNY".into(),
                    amount: format!("{:.2}", line.vat),
                }),
                exchange_rate: line.exchange_rate.to_string(),
            })
            .collect(),
        total_duty: cny(bill.total_duty_fen),
        total_vat: cny(bill.total_vat_fen),
        total: cny(bill.total_fen),
        payment_method: pb::PaymentMethod::from_str_name(&format!(
            "PAYMENT_METHOD_{}",
            bill.payment_method
        ))
        .unwrap_or_default() as i32,
        state: pb::TaxBillState::from_str_name(&format!("TAX_BILL_STATE_{}", bill.state))
            .unwrap_or_default() as i32,
        guarantee_reference: bill.guarantee_reference,
        rounding: bill.rounding,
        tariff_version: bill.tariff_version,
        assessed_at: Some(timestamp(bill.assessed_at)),
        paid_at: bill.paid_at.map(timestamp),
        due_date: bill.due_date.map(Into::into),
    })
}

fn inspection_message(inspection: InspectionRecord) -> Result<pb::Inspection, Status> {
    let route = parse_route(&inspection)?;
    Ok(pb::Inspection {
        state: pb::InspectionState::from_str_name(&format!("INSPECTION_STATE_{}", inspection.state))
            .unwrap_or_default() as i32,
        site_kind: pb::InspectionSiteKind::from_str_name(&format!(
            "INSPECTION_SITE_KIND_{}",
            inspection.site_kind
        ))
        .unwrap_or_default() as i32,
        monitoring: Some(pb::MonitoringRequirement {
            smart_lock: inspection.smart_lock,
            vehicle_tracking: inspection.vehicle_tracking,
        }),
        route: route
            .into_iter()
            .map(|p| pb::GeoPoint {
                latitude: p.latitude,
                longitude: p.longitude,
            })
            .collect(),
        inspection_id: inspection.id,
        declaration_number: inspection.declaration_number,
        site_code: inspection.site_code,
        corridor_metres: inspection.corridor_metres,
        discrepancy: inspection.discrepancy,
        result_details: inspection.result_details,
        ordered_at: Some(timestamp(inspection.ordered_at)),
        completed_at: inspection.completed_at.map(timestamp),
        vehicle_plate: inspection.vehicle_plate,
        lock_id: inspection.lock_id,
        tracker_id: inspection.tracker_id,
    })
}

fn hold_reason(name: &str) -> pb::HoldReason {
    pb::HoldReason::from_str_name(&format!("HOLD_REASON_{name}")).unwrap_or_default()
}

fn hold_message(hold: HoldRecord) -> pb::Hold {
    pb::Hold {
        reason: hold_reason(&hold.reason) as i32,
        hold_id: hold.id,
        declaration_number: hold.declaration_number,
        details: hold.details,
        raised_at: Some(timestamp(hold.raised_at)),
        open: hold.open,
        lifted_at: hold.lifted_at.map(timestamp),
        lifted_by: hold.lifted_by,
        lift_reason: hold.lift_reason,
    }
}

/// The longest vehicle plate a gate check takes, in characters.
const MAX_VEHICLE_PLATE: usize = 20;

fn gate_message(answer: GateAnswer) -> pb::GateDecision {
    pb::GateDecision {
        verdict: if answer.pass {
            pb::GateVerdict::Pass
        } else {
            pb::GateVerdict::Hold
        } as i32,
        reasons: answer
            .holds
            .into_iter()
            .map(
                |(reason, declaration_number, container_number, details)| pb::GateHoldReason {
                    reason: hold_reason(&reason) as i32,
                    declaration_number,
                    container_number,
                    details,
                },
            )
            .collect(),
        decided_at: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(answer.decided_at_ms) * 1_000_000,
        )
        .ok()
        .map(timestamp),
    }
}

fn event_kind(kind: pb::TransportEventKind) -> Option<EventKind> {
    match kind {
        pb::TransportEventKind::Unspecified => None,
        pb::TransportEventKind::Position => Some(EventKind::Position),
        pb::TransportEventKind::SealIntact => Some(EventKind::SealIntact),
        pb::TransportEventKind::SealBroken => Some(EventKind::SealBroken),
        pb::TransportEventKind::LockOpened => Some(EventKind::LockOpened),
        pb::TransportEventKind::LockClosed => Some(EventKind::LockClosed),
    }
}

fn point(field: &str, point: &pb::GeoPoint) -> Result<Point, Error> {
    if (-90.0..=90.0).contains(&point.latitude) && (-180.0..=180.0).contains(&point.longitude) {
        Ok(Point {
            latitude: point.latitude,
            longitude: point.longitude,
        })
    } else {
        Err(Error::invalid(
            field,
            "POSITION_INVALID",
            "latitude in [-90, 90], longitude in [-180, 180]",
        ))
    }
}

#[tonic::async_trait]
impl TaxServiceApi for FieldService {
    async fn assess_duties(
        &self,
        request: Request<pb::AssessDutiesRequest>,
    ) -> Result<Response<pb::TaxBill>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        let declaration = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        let payment = match message.payment_method() {
            pb::PaymentMethod::Immediate => Some(Payment::Immediate),
            pb::PaymentMethod::Summary => {
                let reference = violations.keep(GuaranteeReference::parse(
                    "guarantee_reference",
                    &message.guarantee_reference,
                ));
                if message.guarantee_access_code.trim().is_empty() {
                    violations.push(
                        "guarantee_access_code",
                        "REQUIRED",
                        "the guarantee's access code",
                    );
                }
                reference.map(|reference| Payment::Summary {
                    reference,
                    access_code: message.guarantee_access_code.trim().to_owned(),
                })
            }
            pb::PaymentMethod::Unspecified => {
                violations.push(
                    "payment_method",
                    "REQUIRED",
                    "IMMEDIATE, or SUMMARY against a general guarantee",
                );
                None
            }
        };
        violations.into_result()?;
        let (Some(declaration), Some(payment)) = (declaration, payment) else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let bill = self.field.assess(&caller, &declaration, payment).await?;
        Ok(Response::new(bill_message(bill)?))
    }

    async fn get_tax_bill(
        &self,
        request: Request<pb::GetTaxBillRequest>,
    ) -> Result<Response<pb::TaxBill>, Status> {
        let caller = Caller::of(&request)?.clone();
        let number = number("declaration_number", &request.get_ref().declaration_number)?;
        Ok(Response::new(bill_message(
            self.field.bill(&caller, &number).await?,
        )?))
    }

    async fn render_tax_bill(
        &self,
        request: Request<pb::RenderTaxBillRequest>,
    ) -> Result<Response<pb::RenderedTaxBill>, Status> {
        let caller = Caller::of(&request)?.clone();
        let number = number("declaration_number", &request.get_ref().declaration_number)?;
        let bill = self.field.bill(&caller, &number).await?;
        let lines = parse_lines(&bill)?;
        Ok(Response::new(pb::RenderedTaxBill {
            content_type: "text/plain; charset=utf-8".into(),
            content: render_tax_bill(&bill, &lines).into_bytes(),
        }))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::TaxBill>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        let declaration = violations.keep(parse_declaration_number(
            "declaration_number",
            &message.declaration_number,
        ));
        let amount = message.amount.clone().unwrap_or_default();
        if amount.currency_code != "CNY" {
            violations.push(
                "amount.currency_code",
                "CURRENCY_NOT_CNY",
                "duties are paid in CNY",
            );
        }
        let fen = violations
            .keep(parse_amount("amount.amount", &amount.amount))
            .and_then(|value| violations.keep(to_fen("amount.amount", value)));
        if message.payment_reference.trim().is_empty() {
            violations.push(
                "payment_reference",
                "REQUIRED",
                "the bank's payment reference",
            );
        }
        violations.into_result()?;
        let (Some(declaration), Some(fen)) = (declaration, fen) else {
            return Err(
                Error::internal(anyhow::anyhow!("validation passed with a field missing")).into(),
            );
        };
        let bill = self
            .field
            .pay(&declaration, fen, message.payment_reference.trim())
            .await?;
        Ok(Response::new(bill_message(bill)?))
    }
}

#[tonic::async_trait]
impl InspectionServiceApi for FieldService {
    async fn order_inspection(
        &self,
        request: Request<pb::OrderInspectionRequest>,
    ) -> Result<Response<pb::Inspection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let declaration = number("declaration_number", &message.declaration_number)?;
        if message.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "REQUIRED", "why the goods are inspected").into());
        }
        let house = if message.ordered_by_house.is_empty() {
            caller.house.clone()
        } else {
            message.ordered_by_house.clone()
        };
        let inspection = self
            .field
            .order_inspection(&declaration, message.reason.trim(), &house)
            .await?;
        Ok(Response::new(inspection_message(inspection)?))
    }

    async fn choose_inspection_site(
        &self,
        request: Request<pb::ChooseInspectionSiteRequest>,
    ) -> Result<Response<pb::Inspection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let declaration = number("declaration_number", &message.declaration_number)?;
        let inland = match message.site_kind() {
            pb::InspectionSiteKind::Port => false,
            pb::InspectionSiteKind::Inland => true,
            pb::InspectionSiteKind::Unspecified => {
                return Err(Error::invalid(
                    "site_kind",
                    "REQUIRED",
                    "PORT, or INLAND at a site of the home house",
                )
                .into());
            }
        };
        let mut violations = Violations::new();
        let route: Vec<Point> = message
            .route
            .iter()
            .enumerate()
            .filter_map(|(index, p)| {
                violations.keep(point(&format!("route[{index}]"), p).map_err(|e| match e {
                    Error::InvalidArgument(mut found) => found.remove(0),
                    _ => customs_common::error::FieldViolation::new(
                        format!("route[{index}]"),
                        "POSITION_INVALID",
                        "invalid",
                    ),
                }))
            })
            .collect();
        violations.into_result()?;
        let choice = SiteChoice {
            inland,
            site_code: message.site_code.trim().to_owned(),
            route,
            vehicle_plate: message.vehicle_plate,
            lock_id: message.lock_id,
            tracker_id: message.tracker_id,
        };
        let inspection = self
            .field
            .choose_site(&caller, &declaration, choice)
            .await?;
        Ok(Response::new(inspection_message(inspection)?))
    }

    async fn get_inspection(
        &self,
        request: Request<pb::GetInspectionRequest>,
    ) -> Result<Response<pb::Inspection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let declaration = number("declaration_number", &request.get_ref().declaration_number)?;
        let inspection = self.field.inspection(&declaration).await?;
        if caller.acts_for_an_enterprise() {
            let found = self.field.peer.declaration(&declaration).await?;
            let content = found.content.unwrap_or_default();
            if !caller.may_see(&[&content.enterprise_code, &content.broker_code]) {
                return Err(Error::not_found(
                    "INSPECTION_NOT_FOUND",
                    format!("no inspection is ordered for declaration {declaration}"),
                )
                .into());
            }
        }
        Ok(Response::new(inspection_message(inspection)?))
    }

    async fn record_inspection_result(
        &self,
        request: Request<pb::RecordInspectionResultRequest>,
    ) -> Result<Response<pb::Inspection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let declaration = number("declaration_number", &message.declaration_number)?;
        if message.discrepancy && message.details.trim().is_empty() {
            return Err(Error::invalid("details", "REQUIRED", "what the inspection found").into());
        }
        let inspection = self
            .field
            .record_result(
                &caller,
                &declaration,
                message.discrepancy,
                message.details.trim(),
            )
            .await?;
        Ok(Response::new(inspection_message(inspection)?))
    }
}

#[tonic::async_trait]
impl TransportServiceApi for FieldService {
    async fn report_transport_events(
        &self,
        request: Request<Streaming<pb::TransportEvent>>,
    ) -> Result<Response<pb::ReportTransportEventsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut accepted = 0;
        let mut holds = Vec::new();
        let mut index = 0usize;
        while let Some(event) = stream.next().await {
            let event = event?;
            let field = format!("events[{index}]");
            index += 1;
            let declaration = number(
                &format!("{field}.declaration_number"),
                &event.declaration_number,
            )?;
            if event.device_id.trim().is_empty() {
                return Err(Error::invalid(
                    format!("{field}.device_id"),
                    "REQUIRED",
                    "the tracker or lock",
                )
                .into());
            }
            let Some(kind) = event_kind(event.kind()) else {
                return Err(Error::invalid(
                    format!("{field}.kind"),
                    "REQUIRED",
                    "what the device reports",
                )
                .into());
            };
            let position = event
                .position
                .as_ref()
                .map(|p| point(&format!("{field}.position"), p))
                .transpose()?;
            if kind == EventKind::Position && position.is_none() {
                return Err(Error::invalid(
                    format!("{field}.position"),
                    "REQUIRED",
                    "a position report has a position",
                )
                .into());
            }
            let occurred_at = event
                .occurred_at
                .as_ref()
                .and_then(instant)
                .unwrap_or_else(OffsetDateTime::now_utc);
            // Events before a failure stay recorded; the device resends from there.
            if let Some(hold) = self
                .field
                .report_event(
                    EventRecord {
                        declaration_number: declaration,
                        device_id: event.device_id.trim().to_owned(),
                        kind: event
                            .kind()
                            .as_str_name()
                            .trim_start_matches("TRANSPORT_EVENT_KIND_")
                            .to_owned(),
                        latitude: position.map(|p| p.latitude),
                        longitude: position.map(|p| p.longitude),
                        at_site: event.at_site.trim().to_owned(),
                        occurred_at,
                    },
                    kind,
                )
                .await?
            {
                holds.push(hold_message(hold));
            }
            accepted += 1;
        }
        Ok(Response::new(pb::ReportTransportEventsResponse {
            events_accepted: accepted,
            holds_raised: holds,
        }))
    }

    async fn get_track(
        &self,
        request: Request<pb::GetTrackRequest>,
    ) -> Result<Response<pb::Track>, Status> {
        let declaration = number("declaration_number", &request.get_ref().declaration_number)?;
        let events = self.field.repository.events(&declaration).await?;
        let holds = self.field.repository.holds(&declaration).await?;
        Ok(Response::new(pb::Track {
            declaration_number: declaration,
            events: events
                .into_iter()
                .map(|e| pb::TransportEvent {
                    device_id: e.device_id,
                    declaration_number: e.declaration_number,
                    kind: pb::TransportEventKind::from_str_name(&format!(
                        "TRANSPORT_EVENT_KIND_{}",
                        e.kind
                    ))
                    .unwrap_or_default() as i32,
                    position: e.latitude.zip(e.longitude).map(|(latitude, longitude)| {
                        pb::GeoPoint {
                            latitude,
                            longitude,
                        }
                    }),
                    occurred_at: Some(timestamp(e.occurred_at)),
                    at_site: e.at_site,
                })
                .collect(),
            holds: holds.into_iter().map(hold_message).collect(),
        }))
    }

    async fn lift_hold(
        &self,
        request: Request<pb::LiftHoldRequest>,
    ) -> Result<Response<pb::Hold>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let mut violations = Violations::new();
        if message.hold_id.trim().is_empty() {
            violations.push("hold_id", "REQUIRED", "the hold to lift");
        }
        if message.reason.trim().is_empty() {
            violations.push("reason", "REQUIRED", "how the hold was dealt with");
        }
        violations.into_result()?;
        let hold = self
            .field
            .repository
            .lift_hold(
                message.hold_id.trim(),
                &caller.subject,
                message.reason.trim(),
            )
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "HOLD_NOT_FOUND",
                    format!("no hold {}", message.hold_id.trim()),
                )
            })?;
        tracing::info!(hold = %hold.id, declaration = %hold.declaration_number, officer = %caller.subject, "hold lifted");
        Ok(Response::new(hold_message(hold)))
    }
}

#[tonic::async_trait]
impl GateServiceApi for FieldService {
    async fn check_gate(
        &self,
        request: Request<pb::CheckGateRequest>,
    ) -> Result<Response<pb::GateDecision>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        if message.request_id.trim().is_empty() {
            violations.push(
                "request_id",
                "REQUIRED",
                "so that a retry does not count as a second exit",
            );
        }
        if message.gate_id.trim().is_empty() {
            violations.push("gate_id", "REQUIRED", "the gate asking");
        }
        let plate = message.vehicle_plate.trim();
        if plate.is_empty() || plate.chars().count() > MAX_VEHICLE_PLATE {
            violations.push(
                "vehicle_plate",
                "VEHICLE_PLATE_INVALID",
                format!("the vehicle presented, 1 to {MAX_VEHICLE_PLATE} characters (its exit is recorded with it)"),
            );
        }
        if message.declaration_numbers.is_empty() {
            violations.push(
                "declaration_numbers",
                "REQUIRED",
                "the declarations the vehicle carries goods of",
            );
        }
        if !self
            .field
            .config
            .ports
            .contains_key(message.port_code.trim())
        {
            violations.push(
                "port_code",
                "PORT_UNKNOWN",
                "the gate's port, one of the configured ports",
            );
        }
        let mut declarations = Vec::with_capacity(message.declaration_numbers.len());
        for (index, value) in message.declaration_numbers.iter().enumerate() {
            if let Some(number) = violations.keep(parse_declaration_number(
                &format!("declaration_numbers[{index}]"),
                value,
            )) && !declarations.contains(&number)
            {
                declarations.push(number);
            }
        }
        // A container read twice (the gate's readers see each truck more than once) is
        // one container: counted twice, its exit would look like a second one.
        let mut containers = Vec::with_capacity(message.container_numbers.len());
        for (index, container) in message.container_numbers.into_iter().enumerate() {
            if !is_container_number(&container) {
                violations.push(
                    format!("container_numbers[{index}]"),
                    "CONTAINER_NUMBER_INVALID",
                    "an ISO 6346 container number with its check digit",
                );
            } else if !containers.contains(&container) {
                containers.push(container);
            }
        }
        violations.into_result()?;
        let check = GateCheck {
            request_id: message.request_id.trim().to_owned(),
            gate_id: message.gate_id.trim().to_owned(),
            port_code: message.port_code.trim().to_owned(),
            vehicle_plate: plate.to_owned(),
            containers,
            declarations,
        };
        Ok(Response::new(gate_message(
            self.field.check_gate(&check).await?,
        )))
    }

    async fn get_release(
        &self,
        request: Request<pb::GetReleaseRequest>,
    ) -> Result<Response<pb::ReleaseRecord>, Status> {
        let caller = Caller::of(&request)?.clone();
        let declaration = number("declaration_number", &request.get_ref().declaration_number)?;
        let not_found = || {
            Error::not_found(
                "RELEASE_NOT_FOUND",
                format!("declaration {declaration} has not been released"),
            )
        };
        let facts = self
            .field
            .repository
            .release_of(&declaration)
            .await?
            .ok_or_else(not_found)?;
        if caller.acts_for_an_enterprise() {
            let found = self.field.peer.declaration(&declaration).await?;
            let content = found.content.unwrap_or_default();
            if !caller.may_see(&[&content.enterprise_code, &content.broker_code]) {
                return Err(not_found().into());
            }
        }
        let release = facts.release;
        Ok(Response::new(pb::ReleaseRecord {
            declaration_number: release.declaration_number,
            container_numbers: facts.containers,
            port_code: release.port_code,
            released_at: Some(timestamp(release.released_at)),
            exited: release.exited_at.is_some(),
            exited_at: release.exited_at.map(timestamp),
            exit_gate: release.exit_gate,
            exit_vehicle_plate: release.exit_vehicle,
            exited_container_numbers: facts.exited_containers,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transport::HoldReason;

    #[test]
    fn every_hold_reason_has_its_wire_value() {
        for reason in [
            HoldReason::NoRelease,
            HoldReason::OpenHold,
            HoldReason::SealBroken,
            HoldReason::ContainerNotOnManifest,
            HoldReason::AlreadyExited,
            HoldReason::RouteDeviation,
            HoldReason::LockOpenedOutsideSite,
            HoldReason::LandPortModeNotYetOpen,
        ] {
            assert_ne!(
                hold_reason(reason.as_str()),
                pb::HoldReason::Unspecified,
                "{reason:?}"
            );
        }
    }
}
