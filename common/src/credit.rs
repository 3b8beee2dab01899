//! Credit schemes (DOMAIN.md 8): the national table of enterprise credit classes is
//! effective-dated configuration, because the scheme changed in 2018, 2021 and 2026.
//! Each scheme names its classes; a scheme that drops a class of the one before says
//! which of its own each enterprise in that class moves to when it takes effect.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail, ensure};
use serde::Deserialize;
use time::Date;

use crate::day::parse_iso_day;

/// One scheme as configured (`[[credit.schemes]]`).
#[derive(Debug, Clone, Deserialize)]
pub struct CreditSchemeSetting {
    /// How the scheme is known, "2018".
    pub name: String,
    /// The day it comes into force, `YYYY-MM-DD` (Beijing).
    pub effective_from: String,
    pub classes: Vec<CreditClassSetting>,
    /// Classes of the scheme before that this one drops, each to the class of this one
    /// that its enterprises hold from `effective_from` on.
    #[serde(default)]
    pub carried_over: BTreeMap<String, String>,
}

/// One class of a scheme.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CreditClassSetting {
    /// Upper-case code, `GENERAL_CREDIT`: what the API, the risk parameters and the
    /// inland-inspection policy name it by.
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// Whether its enterprises may pay by summary tax payment against a general
    /// guarantee (DOMAIN.md 8: discredited enterprises may not).
    pub summary_tax_payment: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreditSettings {
    pub schemes: Vec<CreditSchemeSetting>,
}

/// A scheme, with its day parsed.
#[derive(Debug, Clone)]
pub struct CreditScheme {
    pub name: String,
    pub effective_from: Date,
    pub classes: Vec<CreditClassSetting>,
    pub carried_over: BTreeMap<String, String>,
}

impl CreditScheme {
    pub fn class(&self, code: &str) -> Option<&CreditClassSetting> {
        self.classes.iter().find(|class| class.code == code)
    }

    /// The class codes, comma-separated, for messages.
    pub fn codes(&self) -> String {
        self.classes
            .iter()
            .map(|class| class.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a class cannot be given on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassRefusal {
    /// No scheme is in force yet on that day.
    NoScheme,
    /// The scheme in force on that day has no such class.
    NotInScheme { scheme: String, codes: String },
}

/// The configured schemes, oldest first, validated.
#[derive(Debug, Clone)]
pub struct CreditSchemes {
    schemes: Vec<CreditScheme>,
}

fn is_code(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl CreditSchemes {
    /// Checks the schemes: at least one; distinct days; codes upper case and distinct
    /// within a scheme; and every class of a scheme either kept by the next or carried
    /// over to one of the next's classes.
    pub fn new(settings: &CreditSettings) -> anyhow::Result<Self> {
        ensure!(
            !settings.schemes.is_empty(),
            "credit.schemes: at least one credit scheme is needed"
        );
        let mut schemes = settings
            .schemes
            .iter()
            .map(|s| {
                Ok(CreditScheme {
                    name: s.name.clone(),
                    effective_from: parse_iso_day(&s.effective_from).with_context(|| {
                        format!(
                            "credit scheme {}: effective_from {:?} is not YYYY-MM-DD",
                            s.name, s.effective_from
                        )
                    })?,
                    classes: s.classes.clone(),
                    carried_over: s.carried_over.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        schemes.sort_by_key(|scheme| scheme.effective_from);
        for (i, scheme) in schemes.iter().enumerate() {
            let name = &scheme.name;
            ensure!(
                !scheme.classes.is_empty(),
                "credit scheme {name} has no classes"
            );
            for (j, class) in scheme.classes.iter().enumerate() {
                ensure!(
                    is_code(&class.code),
                    "credit scheme {name}: class code {:?} is not upper-case letters, digits and _",
                    class.code
                );
                ensure!(
                    scheme.classes[..j].iter().all(|c| c.code != class.code),
                    "credit scheme {name} names class {} twice",
                    class.code
                );
            }
            let Some(before) = i.checked_sub(1).map(|b| &schemes[b]) else {
                ensure!(
                    scheme.carried_over.is_empty(),
                    "credit scheme {name} is the first: it has no classes to carry over"
                );
                continue;
            };
            ensure!(
                before.effective_from != scheme.effective_from,
                "credit schemes {} and {name} come into force on the same day",
                before.name
            );
            for (from, to) in &scheme.carried_over {
                if before.class(from).is_none() {
                    bail!(
                        "credit scheme {name} carries over {from}, which scheme {} does not have",
                        before.name
                    );
                }
                if scheme.class(from).is_some() {
                    bail!("credit scheme {name} keeps {from}, and carries it over too");
                }
                if scheme.class(to).is_none() {
                    bail!(
                        "credit scheme {name} carries {from} over to {to}, not one of its classes"
                    );
                }
            }
            for class in &before.classes {
                if scheme.class(&class.code).is_none()
                    && !scheme.carried_over.contains_key(&class.code)
                {
                    bail!(
                        "credit scheme {name} drops class {} of scheme {} without saying which class its enterprises hold now (carried_over)",
                        class.code,
                        before.name
                    );
                }
            }
        }
        Ok(Self { schemes })
    }

    /// The scheme in force on `day`, if any is yet.
    pub fn in_force(&self, day: Date) -> Option<&CreditScheme> {
        self.schemes
            .iter()
            .rev()
            .find(|scheme| scheme.effective_from <= day)
    }

    /// Every scheme, oldest first.
    pub fn schemes(&self) -> &[CreditScheme] {
        &self.schemes
    }

    /// The class `code` of the scheme in force on `day`: what a class given from that
    /// day must be.
    pub fn class_on(&self, day: Date, code: &str) -> Result<&CreditClassSetting, ClassRefusal> {
        let scheme = self.in_force(day).ok_or(ClassRefusal::NoScheme)?;
        scheme.class(code).ok_or_else(|| ClassRefusal::NotInScheme {
            scheme: scheme.name.clone(),
            codes: scheme.codes(),
        })
    }

    /// Whether any scheme has the class `code`.
    pub fn knows(&self, code: &str) -> bool {
        self.schemes
            .iter()
            .any(|scheme| scheme.class(code).is_some())
    }

    /// Every class code of every scheme, each once.
    pub fn codes(&self) -> std::collections::BTreeSet<&str> {
        self.schemes
            .iter()
            .flat_map(|scheme| scheme.classes.iter().map(|class| class.code.as_str()))
            .collect()
    }

    /// The class an enterprise that was given `code` holds on `day`: `code` itself
    /// while the schemes keep it, else the class each later scheme in force by then
    /// carries it over to. `None` for a code no scheme knows.
    pub fn carried_to<'a>(&'a self, code: &'a str, day: Date) -> Option<&'a str> {
        let first = self
            .schemes
            .iter()
            .position(|scheme| scheme.class(code).is_some())?;
        let mut held = code;
        for scheme in self.schemes[first..]
            .iter()
            .take_while(|scheme| scheme.effective_from <= day)
        {
            if scheme.class(held).is_none() {
                held = scheme.carried_over.get(held)?.as_str();
            }
        }
        Some(held)
    }

    /// Checks that a per-class setting (`setting`, such as `risk.sampling`) names every
    /// class of every scheme, and nothing else: a class without one would be left
    /// out of the rule the setting configures.
    pub fn check_covered<'a>(
        &self,
        setting: &str,
        classes: impl IntoIterator<Item = &'a String>,
    ) -> anyhow::Result<()> {
        let codes = self.codes();
        let given: std::collections::BTreeSet<&str> =
            classes.into_iter().map(String::as_str).collect();
        if let Some(missing) = codes.difference(&given).next() {
            bail!("{setting} has nothing for the credit class {missing}");
        }
        if let Some(unknown) = given.difference(&codes).next() {
            bail!("{setting}.{unknown}: no configured credit scheme has the class {unknown}");
        }
        Ok(())
    }

    /// Whether enterprises of class `code` may use summary tax payment, as the latest
    /// scheme that has the class says. A class no scheme knows may not.
    pub fn summary_tax_payment(&self, code: &str) -> bool {
        self.schemes
            .iter()
            .rev()
            .find_map(|scheme| scheme.class(code))
            .is_some_and(|class| class.summary_tax_payment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use time::macros::date;

    /// The 2018 default and a 2021 scheme that drops GENERAL_CERTIFIED.
    fn two_schemes() -> CreditSettings {
        let mut settings = Settings::defaults().unwrap().credit;
        settings.schemes.push(crate::testing::credit_scheme_2021());
        settings
    }

    #[test]
    fn the_default_is_the_2018_scheme_of_four_classes() {
        let schemes = CreditSchemes::new(&Settings::defaults().unwrap().credit).unwrap();
        let scheme = schemes.in_force(date!(2026 - 11 - 27)).unwrap();
        assert_eq!(scheme.name, "2018");
        assert_eq!(
            scheme.codes(),
            "ADVANCED_CERTIFIED, GENERAL_CERTIFIED, GENERAL_CREDIT, DISCREDITED"
        );
        assert!(schemes.summary_tax_payment("GENERAL_CREDIT"));
        assert!(!schemes.summary_tax_payment("DISCREDITED"));
        assert!(!schemes.summary_tax_payment("UNKNOWN"));
        assert_eq!(
            schemes.class_on(date!(2018 - 04 - 30), "GENERAL_CREDIT"),
            Err(ClassRefusal::NoScheme)
        );
    }

    #[test]
    fn a_class_is_given_from_the_scheme_in_force_on_its_day() {
        let schemes = CreditSchemes::new(&two_schemes()).unwrap();
        assert!(
            schemes
                .class_on(date!(2021 - 10 - 31), "GENERAL_CERTIFIED")
                .is_ok()
        );
        assert_eq!(
            schemes.class_on(date!(2021 - 11 - 01), "GENERAL_CERTIFIED"),
            Err(ClassRefusal::NotInScheme {
                scheme: "2021".into(),
                codes: "ADVANCED_CERTIFIED, GENERAL_CREDIT, DISCREDITED".into()
            })
        );
        assert!(schemes.knows("GENERAL_CERTIFIED"));
        assert_eq!(schemes.codes().len(), 4);
        let defaults = Settings::defaults().unwrap();
        schemes
            .check_covered("risk.sampling", defaults.risk.sampling.keys())
            .unwrap();
        let error = |keys: &[&str]| {
            let keys: Vec<String> = keys.iter().map(|&k| k.to_owned()).collect();
            schemes
                .check_covered("risk.sampling", &keys)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(&["ADVANCED_CERTIFIED", "GENERAL_CERTIFIED", "GENERAL_CREDIT"]),
            "risk.sampling has nothing for the credit class DISCREDITED"
        );
        assert!(
            error(&[
                "ADVANCED_CERTIFIED",
                "GENERAL_CERTIFIED",
                "GENERAL_CREDIT",
                "DISCREDITED",
                "TRUSTED"
            ])
            .starts_with("risk.sampling.TRUSTED: no configured")
        );
    }

    #[test]
    fn a_dropped_class_is_carried_over_when_the_next_scheme_takes_effect() {
        let schemes = CreditSchemes::new(&two_schemes()).unwrap();
        assert_eq!(
            schemes.carried_to("GENERAL_CERTIFIED", date!(2021 - 10 - 31)),
            Some("GENERAL_CERTIFIED")
        );
        assert_eq!(
            schemes.carried_to("GENERAL_CERTIFIED", date!(2021 - 11 - 01)),
            Some("GENERAL_CREDIT")
        );
        assert_eq!(
            schemes.carried_to("DISCREDITED", date!(2026 - 01 - 01)),
            Some("DISCREDITED")
        );
        assert_eq!(schemes.carried_to("NOPE", date!(2026 - 01 - 01)), None);
    }

    #[test]
    fn schemes_that_lose_enterprises_or_contradict_themselves_are_refused() {
        let error =
            |settings: &CreditSettings| CreditSchemes::new(settings).unwrap_err().to_string();
        let mut dropped = two_schemes();
        dropped.schemes[1].carried_over.clear();
        assert!(error(&dropped).contains("drops class GENERAL_CERTIFIED"));
        let mut nowhere = two_schemes();
        nowhere.schemes[1]
            .carried_over
            .insert("GENERAL_CERTIFIED".into(), "TRUSTED".into());
        assert!(error(&nowhere).contains("not one of its classes"));
        let mut twice = two_schemes();
        twice.schemes[1]
            .classes
            .push(crate::testing::credit_class("DISCREDITED", false));
        assert!(error(&twice).contains("names class DISCREDITED twice"));
        let mut same_day = two_schemes();
        same_day.schemes[1].effective_from = same_day.schemes[0].effective_from.clone();
        assert!(error(&same_day).contains("same day"));
        let mut lower = two_schemes();
        lower.schemes[1].classes[0].code = "advanced".into();
        assert!(error(&lower).contains("upper-case"));
        assert!(error(&CreditSettings::default()).contains("at least one"));
    }
}
