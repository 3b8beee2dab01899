//! `customs.review.v1.RoutingService`.

use std::{collections::BTreeMap, sync::Arc};

use customs_common::{
    Error, Violations,
    auth::Caller,
    codes::{LineNumbers, parse_declaration_number, parse_hs_code},
    day::today,
    money::{parse_amount, parse_currency},
};
use customs_proto::{
    common::{Date as ProtoDate, Money},
    convert::timestamp,
    review::{self as pb, routing_service_server::RoutingService as RoutingServiceApi},
};
use rust_decimal::Decimal;
use time::Date;
use tonic::{Request, Response, Status};

use crate::{
    domain::routing::{ChapterRange, RoutedItem, Routing, to_cny},
    reviews::Reviews,
    storage::routing::PublishedTable,
};

#[derive(Debug, Clone)]
pub struct RoutingService {
    reviews: Reviews,
    rates: Arc<BTreeMap<String, Decimal>>,
}

impl RoutingService {
    pub fn new(reviews: Reviews, rates: Arc<BTreeMap<String, Decimal>>) -> Self {
        Self { reviews, rates }
    }
}

/// Validates items to route and converts their values to CNY.
pub fn routed_items(
    violations: &mut Violations,
    items: &[pb::ItemValue],
    rates: &BTreeMap<String, Decimal>,
) -> Vec<RoutedItem> {
    if items.is_empty() {
        violations.push(
            "items",
            "REQUIRED",
            "the declaration's items, with their HS codes and values",
        );
    }
    let mut routed = Vec::with_capacity(items.len());
    let mut line_nos = LineNumbers::default();
    for (index, item) in items.iter().enumerate() {
        let field = format!("items[{index}]");
        // As the declaration's logic checks require: an item's sum would otherwise be
        // reported under another's line.
        violations.keep(line_nos.take(&format!("{field}.line_no"), item.line_no));
        let hs_code = violations.keep(parse_hs_code(&format!("{field}.hs_code"), &item.hs_code));
        let value = item.declared_value.clone().unwrap_or_default();
        let currency = violations.keep(parse_currency(
            &format!("{field}.declared_value.currency_code"),
            &value.currency_code,
        ));
        let amount = violations.keep(parse_amount(
            &format!("{field}.declared_value.amount"),
            &value.amount,
        ));
        let value_cny = match (currency, amount) {
            (Some(currency), Some(amount)) => violations.keep(to_cny(
                &format!("{field}.declared_value.currency_code"),
                &currency,
                amount,
                rates,
            )),
            _ => None,
        };
        if let (Some(hs_code), Some(value_cny)) = (hs_code, value_cny) {
            routed.push(RoutedItem {
                line_no: item.line_no,
                hs_code,
                value_cny,
            });
        }
    }
    routed
}

pub fn day_or_today(field: &str, date: Option<&ProtoDate>) -> Result<Date, Error> {
    match date {
        None => Ok(today()),
        Some(date) => Date::try_from(date)
            .map_err(|_| Error::invalid(field, "DATE_INVALID", "not a calendar day")),
    }
}

pub fn decision_message(declaration_number: &str, routing: &Routing) -> pb::RoutingDecision {
    pb::RoutingDecision {
        declaration_number: declaration_number.to_owned(),
        sub_centre: routing.sub_centre.clone(),
        sums: routing
            .sums
            .iter()
            .map(|sum| pb::SubCentreSum {
                sub_centre: sum.sub_centre.clone(),
                total_cny: Some(Money {
                    currency_code: "CNY".into(),
                    amount: format!(
                        "{:.2}",
                        sum.total_cny.round_dp_with_strategy(
                            2,
                            rust_decimal::RoundingStrategy::MidpointAwayFromZero
                        )
                    ),
                }),
                line_nos: sum.line_nos.clone(),
            })
            .collect(),
        table_version: routing.table_version,
        explanation: routing.basis.explanation().to_owned(),
    }
}

fn table_message(published: PublishedTable) -> pb::RoutingTable {
    pb::RoutingTable {
        version: published.table.version,
        effective_from: Some(published.table.effective_from.into()),
        ranges: published
            .table
            .ranges
            .iter()
            .map(|range| pb::ChapterRange {
                first_chapter: i32::from(range.first),
                last_chapter: i32::from(range.last),
                sub_centre: range.sub_centre.clone(),
            })
            .collect(),
        published_at: Some(timestamp(published.published_at)),
        published_by: published.published_by,
    }
}

#[tonic::async_trait]
impl RoutingServiceApi for RoutingService {
    async fn route_declaration(
        &self,
        request: Request<pb::RouteDeclarationRequest>,
    ) -> Result<Response<pb::RoutingDecision>, Status> {
        let message = request.into_inner();
        let mut violations = Violations::new();
        if !message.declaration_number.is_empty() {
            violations.keep(parse_declaration_number(
                "declaration_number",
                &message.declaration_number,
            ));
        }
        let items = routed_items(&mut violations, &message.items, &self.rates);
        violations.into_result()?;
        let day = day_or_today("as_of", message.as_of.as_ref())?;
        let routing = self.reviews.route(&items, day).await?;
        Ok(Response::new(decision_message(
            &message.declaration_number,
            &routing,
        )))
    }

    async fn get_routing_table(
        &self,
        request: Request<pb::GetRoutingTableRequest>,
    ) -> Result<Response<pb::RoutingTable>, Status> {
        let day = day_or_today("as_of", request.get_ref().as_of.as_ref())?;
        Ok(Response::new(table_message(self.reviews.table(day).await?)))
    }

    async fn publish_routing_table(
        &self,
        request: Request<pb::PublishRoutingTableRequest>,
    ) -> Result<Response<pb::RoutingTable>, Status> {
        let caller = Caller::of(&request)?.clone();
        let message = request.into_inner();
        let Some(effective_from) = message.effective_from.as_ref() else {
            return Err(Error::invalid(
                "effective_from",
                "REQUIRED",
                "the day the table takes effect",
            )
            .into());
        };
        let effective_from = day_or_today("effective_from", Some(effective_from))?;
        if effective_from < today() {
            return Err(Error::invalid(
                "effective_from",
                "IN_THE_PAST",
                "a table takes effect today or later; routings already made keep their version",
            )
            .into());
        }
        let mut violations = Violations::new();
        let ranges = message
            .ranges
            .iter()
            .enumerate()
            .filter_map(|(index, range)| {
                let chapter =
                    |value: i32| u8::try_from(value).ok().filter(|c| (1..=97).contains(c));
                match (chapter(range.first_chapter), chapter(range.last_chapter)) {
                    (Some(first), Some(last)) => Some(ChapterRange {
                        first,
                        last,
                        sub_centre: range.sub_centre.clone(),
                    }),
                    _ => {
                        violations.push(
                            format!("ranges[{index}]"),
                            "BAD_CHAPTER_RANGE",
                            "chapters are 1 to 97",
                        );
                        None
                    }
                }
            })
            .collect();
        violations.into_result()?;
        let published = self
            .reviews
            .publish(&caller, effective_from, ranges)
            .await?;
        Ok(Response::new(table_message(published)))
    }
}
