//! Secrets Manager: `GetSecretValue` for one secret, `BatchGetSecretValue` for up to twenty,
//! and the `#key` that picks one string field of a JSON secret.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};

use super::{Answers, Service, request_problem};
use crate::config::reference::ReferenceProblem;

/// Asks for every batch; a client is built only when there is one.
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
    for ids in batches {
        match ids.as_slice() {
            [id] => {
                let value = one(&client, region, id).await;
                answers.insert(id.clone(), value);
            }
            _ => batch(&client, region, ids, &mut answers).await,
        }
    }
    answers
}

async fn one(
    client: &Client,
    region: Option<&str>,
    id: &str,
) -> Result<SecretString, ReferenceProblem> {
    match client.get_secret_value().secret_id(id).send().await {
        Ok(output) => value_of(output.secret_string(), output.secret_binary().is_some()),
        Err(error) => {
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                return Err(ReferenceProblem::NotFound);
            }
            Err(request_problem(
                &error,
                Service::SecretsManager,
                region,
                |region| grant(region, &[id.to_owned()], false),
            ))
        }
    }
}

async fn batch(client: &Client, region: Option<&str>, ids: &[String], answers: &mut Answers) {
    let result = client
        .batch_get_secret_value()
        .set_secret_id_list(Some(ids.to_vec()))
        .send()
        .await;
    let output = match result {
        Ok(output) => output,
        Err(error) => {
            let problem = request_problem(&error, Service::SecretsManager, region, |region| {
                grant(region, ids, true)
            });
            for id in ids {
                answers.insert(id.clone(), Err(problem.clone()));
            }
            return;
        }
    };
    for id in ids {
        let matches = |name: Option<&str>, arn: Option<&str>| {
            name == Some(id.as_str()) || arn == Some(id.as_str())
        };
        let entry = output
            .secret_values()
            .iter()
            .find(|v| matches(v.name(), v.arn()));
        let value = match entry {
            Some(entry) => value_of(entry.secret_string(), entry.secret_binary().is_some()),
            None => Err(
                match output
                    .errors()
                    .iter()
                    .find(|e| e.secret_id() == Some(id.as_str()))
                {
                    Some(e) => match e.error_code() {
                        Some("ResourceNotFoundException") => ReferenceProblem::NotFound,
                        Some("AccessDeniedException") => ReferenceProblem::NotPermitted {
                            grant: grant(
                                region.unwrap_or("REGION"),
                                std::slice::from_ref(id),
                                true,
                            ),
                        },
                        code => ReferenceProblem::Refused(format!(
                            "{}: {}",
                            code.unwrap_or("error"),
                            e.message().unwrap_or("no message")
                        )),
                    },
                    None => ReferenceProblem::Refused("the answer did not mention it".into()),
                },
            ),
        };
        answers.insert(id.clone(), value);
    }
}

fn value_of(string: Option<&str>, binary: bool) -> Result<SecretString, ReferenceProblem> {
    match string {
        Some(value) => Ok(SecretString::from(value.to_owned())),
        None if binary => Err(ReferenceProblem::Binary),
        None => Err(ReferenceProblem::Empty),
    }
}

/// The value a reference names: the whole secret, or the string field `json_key` of its
/// JSON object. Parse errors are not passed on: serde's messages may quote the input.
pub(super) fn pick(
    whole: &SecretString,
    json_key: Option<&str>,
) -> Result<SecretString, ReferenceProblem> {
    let Some(key) = json_key else {
        return Ok(whole.clone());
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(whole.expose_secret()).map_err(|_| ReferenceProblem::NotJsonObject)?;
    match object.get(key) {
        Some(serde_json::Value::String(value)) => Ok(SecretString::from(value.as_str())),
        Some(_) => Err(ReferenceProblem::JsonKeyNotString(key.to_owned())),
        None => Err(ReferenceProblem::NoJsonKey(key.to_owned())),
    }
}

/// The IAM statement a refused request needs. A name matches the secret's ARN with the six
/// random characters Secrets Manager appends, hence `-*`.
fn grant(region: &str, ids: &[String], batch: bool) -> String {
    let arns: Vec<String> = ids
        .iter()
        .map(|id| {
            if id.starts_with("arn:") {
                id.clone()
            } else {
                format!("arn:aws:secretsmanager:{region}:ACCOUNT:secret:{id}-*")
            }
        })
        .collect();
    let batch = if batch {
        " and secretsmanager:BatchGetSecretValue (on *)"
    } else {
        ""
    };
    format!(
        "secretsmanager:GetSecretValue on {}{batch} (and kms:Decrypt on its key when it is a customer managed key)",
        arns.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    #[test]
    fn a_key_picks_one_string_field() {
        let whole = secret(r#"{"token":"t0ken","port":3128,"aes_key":"k"}"#);
        assert_eq!(
            pick(&whole, Some("token")).unwrap().expose_secret(),
            "t0ken"
        );
        assert_eq!(
            pick(&whole, None).unwrap().expose_secret(),
            whole.expose_secret()
        );
        assert_eq!(
            pick(&whole, Some("x")).unwrap_err(),
            ReferenceProblem::NoJsonKey("x".into())
        );
        assert_eq!(
            pick(&whole, Some("port")).unwrap_err(),
            ReferenceProblem::JsonKeyNotString("port".into())
        );
    }

    #[test]
    fn a_key_of_a_secret_that_is_not_json_says_so_without_quoting_it() {
        for text in ["hunter2-not-json", "[\"hunter2\"]", "\"hunter2\""] {
            let e = pick(&secret(text), Some("token")).unwrap_err();
            assert_eq!(e, ReferenceProblem::NotJsonObject);
            assert!(!e.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn a_refusal_names_the_arn_pattern_and_the_batch_action() {
        let one = grant("eu-west-1", &["wxgate/prod".into()], false);
        assert!(
            one.starts_with(
                "secretsmanager:GetSecretValue on arn:aws:secretsmanager:eu-west-1:ACCOUNT:secret:wxgate/prod-* (and kms"
            ),
            "{one}"
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf".to_owned();
        let two = grant("eu-west-1", &[arn.clone(), "y".into()], true);
        assert!(
            two.contains(&arn) && two.contains("BatchGetSecretValue"),
            "{two}"
        );
    }
}
