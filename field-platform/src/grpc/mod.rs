//! The field platform's gRPC services: validate, convert, call the domain, convert back.

pub mod guarantee;
pub mod operations;
pub mod transit;

use customs_common::money::fen_to_string;
use customs_proto::common::Money;

/// An amount in fen as wire money in CNY.
fn cny(fen: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".to_owned(),
        amount: fen_to_string(fen),
    })
}
