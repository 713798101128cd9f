//! References to AWS read from moto on loopback, through the built binary: `wxgate serve`
//! and the Lambda function take their whole config from a SecureString parameter and the
//! token, key and app secret from `ssm:` and `secretsmanager:…#key` references, and answer
//! a signed callback; the requests are batched; a missing or refused reference stops the
//! start naming it; no value reaches the logs at any level.
#![cfg(feature = "external-tests")]

mod support;

use support::aws_params::{
    AwsProxy, ProxyRules, create_binary_secret, create_secret, process_env, put_secure,
    unique_prefix,
};
use support::calls::lambda_answer;
use support::cli::{ConfigFile, run, wxgate};
use support::moto::MotoServer;
use support::runtime_api::{FunctionProcess, HarnessError, apigw_v2_event};
use support::sample::{CORP_ID, text_request};
use support::serve::Server;
use wxgate::config::Config;
use wxgate::simulate::{Answer, PlatformSim};

/// The values kept in AWS; distinctive, so a leak into a log is found.
const TOKEN: &str = "Tok3nFromParameterStore";
const KEY: &str = "S3cretAesKeyFromSecretsManagerJsonField0123";
const APP_SECRET: &str = "AppS3cretFromSecretsManagerJson";

/// The app, its values written as `token`, `key` and `secret` are given.
fn app(token: &str, key: &str, secret: &str) -> String {
    format!(
        r#"[[apps]]
name = "demo"
platform = "wecom"
corp_id = "{CORP_ID}"
agent_id = 218
token = "{token}"
encoding_aes_key = "{key}"
secret = "{secret}"
[apps.reply]
echo = true
"#
    )
}

/// Parameters and a secret under a fresh prefix on `moto`; the config that references them
/// is itself a parameter. Returns `(WXGATE_CONFIG value, the same config written inline)`.
async fn deployment(moto: &MotoServer) -> (String, String) {
    let prefix = unique_prefix("deploy");
    let endpoint = moto.endpoint();
    put_secure(&endpoint, &format!("/{prefix}/token"), TOKEN).await;
    let secret = format!(r#"{{"aes_key":"{KEY}","secret":"{APP_SECRET}"}}"#);
    create_secret(&endpoint, &format!("{prefix}/demo"), &secret).await;
    let referenced = app(
        &format!("ssm:/{prefix}/token"),
        &format!("secretsmanager:{prefix}/demo#aes_key"),
        &format!("secretsmanager:{prefix}/demo#secret"),
    );
    put_secure(&endpoint, &format!("/{prefix}/config"), &referenced).await;
    (format!("ssm:/{prefix}/config"), app(TOKEN, KEY, APP_SECRET))
}

fn sim(inline: &str) -> PlatformSim {
    PlatformSim::new(Config::parse(inline).unwrap().app("demo").unwrap()).unwrap()
}

fn assert_no_values(what: &str, text: &str) {
    for value in [TOKEN, KEY, APP_SECRET] {
        assert!(!text.contains(value), "{what} shows a value: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_its_config_and_secrets_from_aws_and_answers_a_signed_callback() {
    let moto = MotoServer::shared();
    let (reference, inline) = deployment(moto).await;
    let mut env = process_env(&moto.endpoint());
    env.push(("WXGATE_CONFIG", reference));
    // Trace: wxgate's own lines at their most talkative.
    let server = Server::start_from_env(&inline, "trace", &env);
    let sim = sim(&inline);
    let request = text_request(&sim, "hello from ssm", 8_100_001, "n1");
    let (status, body) = server.send(&request).await;
    let Answer::Reply(reply) = sim.check(&request, status, &body).unwrap() else {
        panic!("no reply: {status} {body}");
    };
    assert!(reply.contains("hello from ssm"), "{reply}");
    let logs = server.logs();
    assert!(
        logs.contains("read the config's references from AWS")
            && logs.contains("references=3")
            && logs.contains("requests=2"),
        "{logs}"
    );
    assert_no_values("serve's log", &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_function_takes_its_config_and_secrets_from_aws() {
    let moto = MotoServer::shared();
    let (reference, inline) = deployment(moto).await;
    let env = process_env(&moto.endpoint());
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("WXGATE_CONFIG", &reference));
    env.push(("RUST_LOG", "trace"));
    let mut function = FunctionProcess::spawn(env!("CARGO_BIN_EXE_wxgate"), &[], &env)
        .await
        .unwrap();
    let sim = sim(&inline);
    for (n, text) in ["first", "second"].into_iter().enumerate() {
        let request = text_request(&sim, text, 8_200_001 + n as u64, text);
        let Answer::Reply(reply) = lambda_answer(&mut function, &sim, &request).await else {
            panic!("no reply to {text}");
        };
        assert!(reply.contains(text), "{reply}");
    }
    let logs = function.logs();
    // Read once, at init: the second callback asked nothing.
    assert_eq!(
        logs.matches("read the config's references from AWS")
            .count(),
        2,
        "the config, then its references: {logs}"
    );
    assert_no_values("the function's log", &logs);
}

/// `wxgate check` on `config` (a file) through `proxy`.
fn check(config: &ConfigFile, proxy: &AwsProxy) -> support::cli::Run {
    let mut command = wxgate(&["check", "--config", config.arg()]);
    command
        .envs(process_env(&proxy.endpoint()))
        .env("RUST_LOG", "trace");
    run(&mut command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_parameters_cost_one_get_parameters_per_ten_and_a_secret_one_read() {
    let moto = MotoServer::shared();
    let prefix = unique_prefix("count");
    for i in 0..21 {
        put_secure(
            &moto.endpoint(),
            &format!("/{prefix}/t{i}"),
            &format!("token{i}"),
        )
        .await;
    }
    let secret = format!(r#"{{"aes_key":"{KEY}","secret":"{APP_SECRET}","token":"{TOKEN}"}}"#);
    create_secret(&moto.endpoint(), &format!("{prefix}/one"), &secret).await;
    create_secret(
        &moto.endpoint(),
        &format!("{prefix}/two"),
        "a-whole-secret-of-32-characters",
    )
    .await;
    for n in [1usize, 10, 11, 21] {
        let apps: String = (0..n)
            .map(|i| {
                format!(
                    "[[apps]]\nname = \"blog{i}\"\nplatform = \"mp\"\ntoken = \"ssm:/{prefix}/t{i}\"\n"
                )
            })
            .collect();
        let config = ConfigFile::new("count", &apps);
        let proxy = AwsProxy::start(moto.addr(), ProxyRules::default());
        let out = check(&config, &proxy);
        assert_eq!(out.code, 0, "{n}: {}", out.stderr);
        assert!(
            out.stdout.contains(&format!("config ok: {n} app(s)")),
            "{}",
            out.stdout
        );
        assert_eq!(
            proxy.counts(),
            [("GetParameters".to_owned(), n.div_ceil(10) as u64)].into(),
            "{n} parameters"
        );
    }
    // Three keys of one secret and a second, whole secret: one batch read.
    let mut text = app(
        &format!("secretsmanager:{prefix}/one#token"),
        &format!("secretsmanager:{prefix}/one#aes_key"),
        &format!("secretsmanager:{prefix}/one#secret"),
    );
    text = text.replace(
        "echo = true",
        &format!(
            "echo = false\nforward = \"https://bot.example/wx\"\nforward_secret = \"secretsmanager:{prefix}/two\""
        ),
    );
    let config = ConfigFile::new("count-secrets", &text);
    let proxy = AwsProxy::start(moto.addr(), ProxyRules::default());
    let out = check(&config, &proxy);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        proxy.counts(),
        [("BatchGetSecretValue".to_owned(), 1)].into()
    );
    assert_no_values("check", &format!("{}{}", out.stdout, out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unusable_reference_stops_the_start_naming_it_not_its_value() {
    let moto = MotoServer::shared();
    let prefix = unique_prefix("missing");
    put_secure(&moto.endpoint(), &format!("/{prefix}/token"), TOKEN).await;
    create_secret(
        &moto.endpoint(),
        &format!("{prefix}/demo"),
        &format!(r#"{{"aes_key":"{KEY}"}}"#),
    )
    .await;
    create_binary_secret(
        &moto.endpoint(),
        &format!("{prefix}/bin"),
        b"\x00\x01binary",
    )
    .await;
    let token = format!("ssm:/{prefix}/token");
    let key = format!("secretsmanager:{prefix}/demo#aes_key");
    for (written, says) in [
        (
            app(&format!("ssm:/{prefix}/nothing"), &key, "s"),
            format!("apps[demo].token = \"ssm:/{prefix}/nothing\": not found"),
        ),
        (
            app(
                &token,
                &format!("secretsmanager:{prefix}/absent#aes_key"),
                "s",
            ),
            format!(
                "apps[demo].encoding_aes_key = \"secretsmanager:{prefix}/absent#aes_key\": not found"
            ),
        ),
        (
            app(&token, &key, &format!("secretsmanager:{prefix}/demo#x")),
            format!(
                "apps[demo].secret = \"secretsmanager:{prefix}/demo#x\": secret has no JSON key \"x\""
            ),
        ),
        (
            app(&token, &key, &format!("secretsmanager:{prefix}/bin")),
            format!("apps[demo].secret = \"secretsmanager:{prefix}/bin\": secret is binary"),
        ),
    ] {
        let config = ConfigFile::new("missing", &written);
        let proxy = AwsProxy::start(moto.addr(), ProxyRules::default());
        let out = check(&config, &proxy);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(&says), "{says}\n{}", out.stderr);
        assert_no_values("check", &format!("{}{}", out.stdout, out.stderr));

        // serve stops the same way.
        let mut serve = wxgate(&["serve", "--addr", "127.0.0.1:0", "--config", config.arg()]);
        serve
            .envs(process_env(&moto.endpoint()))
            .env("RUST_LOG", "trace");
        let out = run(&mut serve);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(&says), "{says}\n{}", out.stderr);
        assert_no_values("serve", &format!("{}{}", out.stdout, out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reference_stops_the_function_with_the_grant_it_needs() {
    let moto = MotoServer::shared();
    let (reference, _) = deployment(moto).await;
    let proxy = AwsProxy::start(
        moto.addr(),
        ProxyRules {
            deny: vec!["GetParameters"],
        },
    );
    let env = process_env(&proxy.endpoint());
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("WXGATE_CONFIG", &reference));
    env.push(("RUST_LOG", "trace"));
    let mut function = FunctionProcess::spawn(env!("CARGO_BIN_EXE_wxgate"), &[], &env)
        .await
        .unwrap();
    let event = apigw_v2_event("GET", "/wecom/demo", "", None, false);
    match function.invoke(event).await {
        Err(HarnessError::ProcessExited { .. }) => {}
        other => panic!("expected the function to exit: {other:?}"),
    }
    let logs = function.logs();
    let name = reference.trim_start_matches("ssm:/");
    assert!(
        logs.contains(&format!(
            "WXGATE_CONFIG = \\\"{reference}\\\": not permitted: the role needs ssm:GetParameters on arn:aws:ssm:us-east-1:ACCOUNT:parameter/{name}"
        )),
        "{logs}"
    );
    assert_eq!(proxy.count("GetParameters"), 1, "refused, not retried");
    assert_no_values("the function's log", &logs);

    // The same refusal through the command line, for a secret's batch: exit 2.
    let prefix = unique_prefix("denied");
    create_secret(&moto.endpoint(), &format!("{prefix}/a"), "{}").await;
    let proxy = AwsProxy::start(
        moto.addr(),
        ProxyRules {
            deny: vec!["GetSecretValue"],
        },
    );
    let config = ConfigFile::new(
        "denied",
        &app(&format!("secretsmanager:{prefix}/a#token"), KEY, "s"),
    );
    let out = check(&config, &proxy);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "apps[demo].token = \"secretsmanager:{prefix}/a#token\": not permitted: the role needs secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:ACCOUNT:secret:{prefix}/a-*"
        )),
        "{}",
        out.stderr
    );
    assert_no_values("check", &format!("{}{}", out.stdout, out.stderr));
}
