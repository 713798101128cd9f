//! Which requests read a config's references: the fewest the services allow, no I/O.

use crate::config::reference::{RemoteRef, Usage};

/// The most names one SSM `GetParameters` takes.
pub const PARAMETERS_PER_CALL: usize = 10;
/// The most ids one Secrets Manager `BatchGetSecretValue` takes with a `SecretIdList`.
pub const SECRETS_PER_CALL: usize = 20;

/// The requests for a set of references: each parameter and each secret asked once, however
/// many keys use it (several `#key`s of one secret read it once).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// One `GetParameters` (WithDecryption) per batch.
    pub parameter_batches: Vec<Vec<String>>,
    /// One `BatchGetSecretValue` per batch of two or more, one `GetSecretValue` for a batch
    /// of one (it needs no second IAM action).
    pub secret_batches: Vec<Vec<String>>,
}

impl Plan {
    /// The plan for `usages`, in the order the references are first written.
    pub fn new(usages: &[Usage]) -> Self {
        let mut parameters: Vec<String> = Vec::new();
        let mut secrets: Vec<String> = Vec::new();
        for usage in usages {
            let (list, name) = match &usage.reference {
                RemoteRef::Parameter(name) => (&mut parameters, name),
                RemoteRef::Secret { id, .. } => (&mut secrets, id),
            };
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        Self {
            parameter_batches: chunks(parameters, PARAMETERS_PER_CALL),
            secret_batches: chunks(secrets, SECRETS_PER_CALL),
        }
    }

    /// How many requests the plan makes.
    pub fn requests(&self) -> usize {
        self.parameter_batches.len() + self.secret_batches.len()
    }
}

fn chunks(names: Vec<String>, size: usize) -> Vec<Vec<String>> {
    names.chunks(size).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(raw: &str) -> Usage {
        Usage {
            key: "k".into(),
            reference: RemoteRef::parse(raw).unwrap().unwrap(),
        }
    }

    #[test]
    fn no_reference_no_request() {
        let plan = Plan::new(&[]);
        assert_eq!(plan, Plan::default());
        assert_eq!(plan.requests(), 0);
    }

    #[test]
    fn parameters_go_ten_to_a_call() {
        for (n, calls) in [(1usize, 1), (9, 1), (10, 1), (11, 2), (20, 2), (21, 3)] {
            let usages: Vec<Usage> = (0..n).map(|i| usage(&format!("ssm:/p/{i}"))).collect();
            let plan = Plan::new(&usages);
            assert_eq!(plan.parameter_batches.len(), calls, "{n} parameters");
            assert!(plan.parameter_batches.iter().all(|b| b.len() <= 10));
            assert_eq!(plan.requests(), n.div_ceil(10));
        }
    }

    #[test]
    fn a_secret_is_asked_once_for_all_its_keys() {
        let plan = Plan::new(&[
            usage("secretsmanager:wx/demo#token"),
            usage("ssm:/wx/a"),
            usage("secretsmanager:wx/demo#aes_key"),
            usage("secretsmanager:wx/demo"),
            usage("ssm:/wx/a"),
            usage("secretsmanager:wx/blog#token"),
        ]);
        assert_eq!(plan.parameter_batches, [vec!["/wx/a".to_owned()]]);
        assert_eq!(
            plan.secret_batches,
            [vec!["wx/demo".to_owned(), "wx/blog".to_owned()]]
        );
        assert_eq!(plan.requests(), 2);
    }

    #[test]
    fn secrets_go_twenty_to_a_call() {
        let usages: Vec<Usage> = (0..41)
            .map(|i| usage(&format!("secretsmanager:s{i}#k")))
            .collect();
        let sizes: Vec<usize> = Plan::new(&usages)
            .secret_batches
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [20, 20, 1]);
    }
}
