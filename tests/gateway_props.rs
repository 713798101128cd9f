//! Hostile input through the whole gateway, in process: arbitrary methods, paths, query
//! strings and bodies never panic, never get a 200, and always get one of the documented
//! statuses; arbitrary config text never panics the config parser.

mod support;

use http::Method;
use proptest::prelude::*;
use support::sample::{KEY, TOKEN, wecom_app};
use wxgate::config::Config;
use wxgate::gateway::{CallbackRequest, Gateway};

/// One app per platform mode on the sample's token and key.
fn config_text() -> String {
    format!(
        "{}\n\
         [[apps]]\nname = \"blog\"\nplatform = \"mp\"\ntoken = \"{TOKEN}\"\n\
         [[apps]]\nname = \"comp\"\nplatform = \"open\"\napp_id = \"wxcomp\"\ntoken = \"{TOKEN}\"\n\
         encoding_aes_key = \"{KEY}\"\n",
        wecom_app("demo", "[apps.reply]\necho = true\n")
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/wecom/demo".to_owned()),
        Just("/mp/blog".to_owned()),
        Just("/open/comp".to_owned()),
        Just("/open/comp/wxauth".to_owned()),
        "/[a-z]{0,6}/[a-z$./]{0,8}(/[a-z]{0,4})?",
        ".{0,40}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let param = prop_oneof![
        Just("msg_signature"),
        Just("signature"),
        Just("timestamp"),
        Just("nonce"),
        Just("echostr"),
        Just("encrypt_type"),
        Just("x"),
    ];
    let value = prop_oneof![
        "[0-9a-f]{40}",
        "[0-9]{1,22}",
        "[A-Za-z0-9+/=% ]{0,60}",
        Just("aes".to_owned()),
        ".{0,20}",
    ];
    prop::option::of(
        prop::collection::vec((param, value), 0..8).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "<xml><ToUserName>a</ToUserName><Encrypt>[A-Za-z0-9+/=]{0,120}</Encrypt></xml>"
            .prop_map(String::into_bytes),
        "<xml><MsgType>text</MsgType><Content>.{0,20}</Content></xml>".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn junk_never_panics_and_never_gets_a_200(
        method in method(), path in path(), query in query(), body in body()
    ) {
        let gateway = Gateway::builder(&Config::parse(&config_text()).unwrap()).build().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let response = runtime.block_on(gateway.handle(CallbackRequest {
            method: &method,
            path: &path,
            query: query.as_deref(),
            body: &body,
        }));
        let status = response.status.as_u16();
        prop_assert!(
            [400, 401, 403, 404, 405, 413].contains(&status),
            "status {} for {} {} ?{:?}", status, method, path, query
        );
        prop_assert!(!response.body.is_empty());
    }

    #[test]
    fn arbitrary_config_text_is_an_error_or_a_config_never_a_panic(text in ".{0,200}") {
        let _ = Config::parse(&text);
    }
}
