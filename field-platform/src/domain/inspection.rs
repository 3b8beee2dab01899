//! Where goods are inspected (DOMAIN.md 5.4): at the port, or at an inland supervised
//! site of the enterprise's home house if its credit class allows, with the
//! monitoring the class requires.

use std::collections::BTreeMap;

use customs_common::{Error, config::InlandPolicySetting};

/// What an inland move needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitoring {
    pub smart_lock: bool,
    pub vehicle_tracking: bool,
}

/// The monitoring an inland move needs for `credit_class`, or why it is refused.
pub fn inland_monitoring(
    policy: &BTreeMap<String, InlandPolicySetting>,
    credit_class: &str,
) -> Result<Monitoring, Error> {
    let rule = policy.get(credit_class).ok_or_else(|| {
        Error::failed_precondition(
            "NO_INLAND_POLICY",
            format!("no inland inspection policy is configured for credit class {credit_class}"),
        )
    })?;
    if !rule.inland_allowed {
        return Err(Error::failed_precondition(
            "INLAND_INSPECTION_REFUSED",
            format!("a {credit_class} enterprise's goods are inspected at the port"),
        ));
    }
    Ok(Monitoring {
        smart_lock: rule.smart_lock,
        vehicle_tracking: rule.vehicle_tracking,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use customs_common::config::Settings;

    #[test]
    fn the_default_policy_of_each_credit_class() {
        let settings = Settings::defaults().unwrap();
        let policy = &settings.field.inland_policy;
        assert_eq!(
            inland_monitoring(policy, "ADVANCED_CERTIFIED").unwrap(),
            Monitoring {
                smart_lock: false,
                vehicle_tracking: true
            }
        );
        for class in ["GENERAL_CERTIFIED", "GENERAL_CREDIT"] {
            assert_eq!(
                inland_monitoring(policy, class).unwrap(),
                Monitoring {
                    smart_lock: true,
                    vehicle_tracking: true
                },
                "{class}"
            );
        }
        assert_eq!(
            inland_monitoring(policy, "DISCREDITED")
                .unwrap_err()
                .reason(),
            "INLAND_INSPECTION_REFUSED"
        );
        assert_eq!(
            inland_monitoring(policy, "UNKNOWN").unwrap_err().reason(),
            "NO_INLAND_POLICY"
        );
    }
}
