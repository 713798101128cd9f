//! Parameter Store: `GetParameters` with decryption, ten names a call.

use aws_config::SdkConfig;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::Parameter;
use secrecy::SecretString;

use super::{Answers, Service, request_problem};
use crate::config::reference::ReferenceProblem;

/// Asks for every batch, one after the other (a config rarely needs more than one), with a
/// client built only when there is a batch.
pub(super) async fn fetch(
    shared: &SdkConfig,
    region: Option<&str>,
    batches: &[Vec<String>],
) -> Answers {
    let mut answers = Answers::new();
    if batches.is_empty() {
        return answers;
    }
    let client = Client::new(shared);
    for names in batches {
        let result = client
            .get_parameters()
            .set_names(Some(names.clone()))
            .with_decryption(true)
            .send()
            .await;
        match result {
            Ok(output) => {
                for name in names {
                    let found = output.parameters().iter().find(|p| answers_for(p, name));
                    let value = match found.and_then(Parameter::value) {
                        Some(value) => Ok(SecretString::from(value.to_owned())),
                        None => Err(ReferenceProblem::NotFound),
                    };
                    answers.insert(name.clone(), value);
                }
            }
            Err(error) => {
                let problem =
                    request_problem(&error, Service::Ssm, region, |region| grant(region, names));
                for name in names {
                    answers.insert(name.clone(), Err(problem.clone()));
                }
            }
        }
    }
    answers
}

/// Whether `parameter` is the answer to `asked`: its name, its ARN, either with the
/// `:version` or `:label` selector asked for. (Names not found are in `InvalidParameters`.)
fn answers_for(parameter: &Parameter, asked: &str) -> bool {
    let selector = parameter.selector().unwrap_or("");
    [parameter.name(), parameter.arn()]
        .into_iter()
        .flatten()
        .any(|id| asked == id || asked.strip_suffix(selector) == Some(id))
}

/// The IAM statement a refused batch needs: `ssm:GetParameters` on the parameters asked
/// together (the answer does not say which one was refused), and `kms:Decrypt` for a
/// SecureString under a customer managed key.
fn grant(region: &str, names: &[String]) -> String {
    let arns: Vec<String> = names
        .iter()
        .map(|name| {
            if name.starts_with("arn:") {
                name.clone()
            } else {
                let path = name
                    .split(':')
                    .next()
                    .unwrap_or(name)
                    .trim_start_matches('/');
                format!("arn:aws:ssm:{region}:ACCOUNT:parameter/{path}")
            }
        })
        .collect();
    format!(
        "ssm:GetParameters on {} (and kms:Decrypt on its key when it is a SecureString under a customer managed key)",
        arns.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_arns_of_the_batch() {
        let names = ["/wxgate/token".to_owned(), "plain:2".to_owned()];
        assert_eq!(
            grant("eu-west-1", &names),
            "ssm:GetParameters on arn:aws:ssm:eu-west-1:ACCOUNT:parameter/wxgate/token, \
             arn:aws:ssm:eu-west-1:ACCOUNT:parameter/plain (and kms:Decrypt on its key when \
             it is a SecureString under a customer managed key)"
        );
    }

    #[test]
    fn answers_are_matched_by_name_arn_and_selector() {
        let p = Parameter::builder()
            .name("/wx/t")
            .arn("arn:aws:ssm:r:1:parameter/wx/t")
            .selector(":3")
            .build();
        assert!(answers_for(&p, "/wx/t:3"));
        assert!(answers_for(&p, "arn:aws:ssm:r:1:parameter/wx/t:3"));
        assert!(!answers_for(&p, "/wx/u"));
        let plain = Parameter::builder().name("/wx/t").build();
        assert!(answers_for(&plain, "/wx/t"));
    }
}
