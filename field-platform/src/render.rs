//! The printable tax bill 税款缴款书: fixed-width text a line printer or a receipt
//! printer takes as it is, in Chinese and English.

use std::fmt::Write as _;

use customs_common::money::fen_to_string;

use crate::{domain::tax::TaxLine, storage::operations::TaxBillRecord};

const WIDTH: usize = 96;

pub fn render_tax_bill(bill: &TaxBillRecord, lines: &[TaxLine]) -> String {
    let mut out = String::new();
    let rule = "=".repeat(WIDTH);
    let thin = "-".repeat(WIDTH);
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "海关专用缴款书 / CUSTOMS TAX BILL");
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "Tax bill          {}", bill.id);
    let _ = writeln!(out, "Declaration       {}", bill.declaration_number);
    let _ = writeln!(out, "Taxpayer          {}", bill.enterprise_code);
    let _ = writeln!(out, "Customs house     {}", bill.house_code);
    let assessed = bill
        .assessed_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = writeln!(out, "Assessed at       {assessed}");
    let _ = writeln!(out, "Tariff version    {}", bill.tariff_version);
    let _ = writeln!(
        out,
        "Payment           {}{}",
        bill.payment_method,
        if bill.guarantee_reference.is_empty() {
            String::new()
        } else {
            format!(" against guarantee {}", bill.guarantee_reference)
        }
    );
    if let Some(due) = bill.due_date {
        let _ = writeln!(out, "Due by            {due}");
    }
    let _ = writeln!(out, "State             {}", bill.state);
    let _ = writeln!(out, "{thin}");
    let _ = writeln!(
        out,
        "{:>4} {:<10} {:>15} {:>9} {:>14} {:>6} {:>12} {:>6} {:>12}",
        "Line", "HS code", "Declared", "Rate", "Value CNY", "Duty%", "Duty CNY", "VAT%", "VAT CNY"
    );
    for line in lines {
        let _ = writeln!(
            out,
            "{:>4} {:<10} {:>15} {:>9} {:>14} {:>6} {:>12} {:>6} {:>12}",
            line.line_no,
            line.hs_code,
            format!("{} {}", line.declared_amount, line.currency),
            line.exchange_rate.normalize(),
            format!("{:.2}", line.customs_value),
            format!(
                "{}",
                (line.duty_rate * rust_decimal::Decimal::ONE_HUNDRED).normalize()
            ),
            format!("{:.2}", line.duty),
            format!(
                "{}",
                (line.vat_rate * rust_decimal::Decimal::ONE_HUNDRED).normalize()
            ),
            format!("{:.2}", line.vat),
        );
    }
    let _ = writeln!(out, "{thin}");
    let _ = writeln!(
        out,
        "{:<24}{:>16} CNY",
        "关税 Import duty",
        fen_to_string(bill.total_duty_fen)
    );
    let _ = writeln!(
        out,
        "{:<24}{:>16} CNY",
        "增值税 Import VAT",
        fen_to_string(bill.total_vat_fen)
    );
    let _ = writeln!(
        out,
        "{:<24}{:>16} CNY",
        "合计 Total",
        fen_to_string(bill.total_fen)
    );
    let _ = writeln!(out, "{thin}");
    let _ = writeln!(out, "Rounding: {}", bill.rounding);
    let _ = writeln!(out, "{rule}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use time::macros::datetime;

    #[test]
    fn a_printed_bill_shows_every_line_and_the_totals() {
        let bill = TaxBillRecord {
            declaration_number: "530120261000000001".into(),
            id: "TB1".into(),
            enterprise_code: "4403960001".into(),
            broker_code: String::new(),
            house_code: "5300".into(),
            tariff_version: 1,
            payment_method: "IMMEDIATE".into(),
            state: "ASSESSED".into(),
            guarantee_reference: String::new(),
            lines: String::new(),
            total_duty_fen: 447_300,
            total_vat_fen: 837_232,
            total_fen: 1_284_532,
            rounding: "half-up".into(),
            due_date: None,
            assessed_at: datetime!(2026-11-26 10:00 UTC),
            paid_at: None,
            payment_reference: String::new(),
        };
        let line = TaxLine {
            line_no: 2,
            hs_code: "0202300090".into(),
            currency: "USD".into(),
            declared_amount: Decimal::new(525_000, 2),
            exchange_rate: Decimal::new(71_000, 4),
            customs_value: Decimal::new(3_727_500, 2),
            duty_rate: Decimal::new(12, 2),
            duty: Decimal::new(447_300, 2),
            vat_rate: Decimal::new(9, 2),
            vat: Decimal::new(375_732, 2),
        };
        let text = render_tax_bill(&bill, &[line]);
        for expected in [
            "530120261000000001",
            "0202300090",
            "5250.00 USD",
            "37275.00",
            "4473.00",
            "3757.32",
            "12845.32",
            "合计 Total",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
    }
}
