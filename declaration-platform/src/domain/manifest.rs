//! Manifests 舱单: bills of lading and their containers.

use customs_common::{
    Error, Violations,
    codes::{is_container_number, parse_house_code},
};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Container {
    pub number: String,
    pub seal_number: String,
    pub gross_weight_kg: String,
}

/// Validates a manifest's fields; every violation at once.
pub fn validate_manifest(
    bill_of_lading: &str,
    conveyance: &str,
    port_code: &str,
    direction_given: bool,
    containers: &[Container],
) -> Result<(), Error> {
    let mut violations = Violations::new();
    let bill = bill_of_lading.trim();
    if bill.is_empty()
        || bill.len() > 35
        || !bill.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        violations.push(
            "manifest.bill_of_lading",
            "BILL_OF_LADING_FORMAT",
            "1 to 35 letters, digits or hyphens",
        );
    }
    if conveyance.trim().is_empty() {
        violations.push(
            "manifest.conveyance",
            "REQUIRED",
            "the vessel and voyage, flight or vehicle",
        );
    }
    if let Err(violation) = parse_house_code("manifest.port_code", port_code) {
        violations.extend([violation]);
    }
    if !direction_given {
        violations.push("manifest.direction", "REQUIRED", "import or export");
    }
    let mut seen = std::collections::HashSet::new();
    for (i, container) in containers.iter().enumerate() {
        if !is_container_number(&container.number) {
            violations.push(
                format!("manifest.containers[{i}].container_number"),
                "CONTAINER_NUMBER_INVALID",
                "an ISO 6346 container number with a correct check digit",
            );
        } else if !seen.insert(container.number.as_str()) {
            violations.push(
                format!("manifest.containers[{i}].container_number"),
                "CONTAINER_DUPLICATE",
                "listed twice",
            );
        }
    }
    violations.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reports_every_violation() {
        let containers = [
            Container {
                number: "MSKU1234565".into(),
                seal_number: "S1".into(),
                gross_weight_kg: "1000".into(),
            },
            Container {
                number: "MSKU1234565".into(),
                seal_number: "S2".into(),
                gross_weight_kg: "1000".into(),
            },
            Container {
                number: "BAD".into(),
                seal_number: String::new(),
                gross_weight_kg: String::new(),
            },
        ];
        let Err(Error::InvalidArgument(violations)) =
            validate_manifest("", "", "53", false, &containers)
        else {
            panic!("expected violations");
        };
        let reasons: Vec<_> = violations.iter().map(|v| &*v.reason).collect();
        assert_eq!(
            reasons,
            [
                "BILL_OF_LADING_FORMAT",
                "REQUIRED",
                "HOUSE_CODE_FORMAT",
                "REQUIRED",
                "CONTAINER_DUPLICATE",
                "CONTAINER_NUMBER_INVALID"
            ]
        );
    }
}
