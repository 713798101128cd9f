//! The fake Open Platform (`support::fake_open`) over HTTP, as a client sees it: the whole
//! chain from the verify ticket to a customer message sent with an authorizer's token, the
//! authorization pages, and the errcodes its knobs make it answer.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fake_open::{COMPONENT_APP_ID, COMPONENT_SECRET, FakeOpen, LoginVisit};

const SHOP: &str = "wxshopaccount0000001";
const CAFE: &str = "wxcafeaccount0000002";

/// A client of one fake.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &FakeOpen) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: fake.url(),
        }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query).unwrap()
    }

    /// POSTs `body` (raw) to `path?query`; the JSON answer, which must come with HTTP 200.
    async fn post_raw(&self, path: &str, query: &[(&str, &str)], body: String) -> Value {
        let response = self
            .client
            .post(self.url(path, query))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        self.post_raw(path, query, body.to_string()).await
    }

    /// A component endpoint with the component token `token`.
    async fn component(&self, endpoint: &str, token: &str, body: Value) -> Value {
        let mut body = body;
        body["component_appid"] = json!(COMPONENT_APP_ID);
        self.post(
            &format!("/cgi-bin/component/{endpoint}"),
            &[("component_access_token", token)],
            body,
        )
        .await
    }

    async fn component_token_with(&self, appid: &str, secret: &str, ticket: &str) -> Value {
        self.post(
            "/cgi-bin/component/api_component_token",
            &[],
            json!({
                "component_appid": appid,
                "component_appsecret": secret,
                "component_verify_ticket": ticket,
            }),
        )
        .await
    }

    /// A fresh component token (issuing a ticket for it).
    async fn component_token(&self, fake: &FakeOpen) -> String {
        let answer = self
            .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, &fake.issue_ticket())
            .await;
        str_of(&answer, "component_access_token")
    }

    async fn send_text(&self, token: &str, touser: &str, content: &str) -> Value {
        self.post(
            "/cgi-bin/message/custom/send",
            &[("access_token", token)],
            json!({"touser": touser, "msgtype": "text", "text": {"content": content}}),
        )
        .await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .get(self.url(path, query))
            .header("referer", "https://open.example.com/authorize")
            .send()
            .await
            .unwrap()
    }
}

fn str_of(value: &Value, pointer: &str) -> String {
    let pointer = if pointer.starts_with('/') {
        pointer.to_owned()
    } else {
        format!("/{pointer}")
    };
    value
        .pointer(&pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
        .to_owned()
}

fn errcode(value: &Value) -> i64 {
    value["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no errcode in {value}"))
}

#[tokio::test]
async fn the_whole_chain_from_ticket_to_customer_message() {
    let fake = FakeOpen::start();
    let api = Api::new(&fake);

    let ticket = fake.issue_ticket();
    assert_eq!(ticket, "ticket@@@1");
    let answer = api
        .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, &ticket)
        .await;
    assert_eq!(
        answer,
        json!({"component_access_token": "component-token-1", "expires_in": 7200})
    );
    let component = str_of(&answer, "component_access_token");

    let answer = api
        .component("api_create_preauthcode", &component, json!({}))
        .await;
    assert_eq!(
        answer,
        json!({"pre_auth_code": "preauthcode@@@1", "expires_in": 600})
    );
    assert_eq!(fake.pre_auth_codes_issued(), 1);

    let code = fake.authorize(SHOP, &[1, 15]);
    assert_eq!(code, "queryauthcode@@@1");
    let answer = api
        .component(
            "api_query_auth",
            &component,
            json!({"authorization_code": code}),
        )
        .await;
    let first_refresh = format!("refreshtoken@@@{SHOP}@@@1");
    assert_eq!(
        answer,
        json!({"authorization_info": {
            "authorizer_appid": SHOP,
            "authorizer_access_token": format!("authorizer-token-{SHOP}-1"),
            "expires_in": 7200,
            "authorizer_refresh_token": first_refresh,
            "func_info": [{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": 15}}],
        }})
    );
    assert_eq!(fake.query_auths(), 1);

    // Without rotation the same refresh token comes back, and stays good.
    let refresh = |token: &str| json!({"authorizer_appid": SHOP, "authorizer_refresh_token": token.to_owned()});
    fake.set_authorizer_expires_in(3600);
    for n in 2..=3 {
        let answer = api
            .component("api_authorizer_token", &component, refresh(&first_refresh))
            .await;
        assert_eq!(
            answer,
            json!({
                "authorizer_access_token": format!("authorizer-token-{SHOP}-{n}"),
                "expires_in": 3600,
                "authorizer_refresh_token": first_refresh,
            })
        );
    }

    // With rotation each refresh answers a new one, and the one used stops working.
    fake.set_rotate_refresh_tokens(true);
    let answer = api
        .component("api_authorizer_token", &component, refresh(&first_refresh))
        .await;
    let rotated = str_of(&answer, "authorizer_refresh_token");
    assert_eq!(rotated, format!("refreshtoken@@@{SHOP}@@@2"));
    assert_eq!(fake.current_refresh_token(SHOP), Some(rotated.clone()));
    let answer = api
        .component("api_authorizer_token", &component, refresh(&first_refresh))
        .await;
    assert_eq!(errcode(&answer), 61023);
    let answer = api
        .component("api_authorizer_token", &component, refresh(&rotated))
        .await;
    let authorizer_token = str_of(&answer, "authorizer_access_token");
    assert_ne!(str_of(&answer, "authorizer_refresh_token"), rotated);
    assert_eq!(fake.authorizer_refreshes(SHOP), 5);
    assert_eq!(fake.authorizer_refreshes(CAFE), 0);
    assert_eq!(fake.authorizer_refreshes_total(), 5);

    fake.set_account(SHOP, "The Shop", "gh_theshop0001");
    let answer = api
        .component(
            "api_get_authorizer_info",
            &component,
            json!({"authorizer_appid": SHOP}),
        )
        .await;
    assert_eq!(
        answer["authorizer_info"],
        json!({
            "nick_name": "The Shop", "head_img": "", "service_type_info": {"id": 2},
            "verify_type_info": {"id": 0}, "user_name": "gh_theshop0001",
            "principal_name": "Fake Co", "alias": "", "qrcode_url": "",
        })
    );
    assert_eq!(answer["authorization_info"]["authorizer_appid"], SHOP);
    assert_eq!(
        answer["authorization_info"]["func_info"],
        json!([{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": 15}}])
    );
    let answer = api
        .component(
            "api_get_authorizer_info",
            &component,
            json!({"authorizer_appid": CAFE}),
        )
        .await;
    assert_eq!(errcode(&answer), 61003);

    // Customer messages go out with an authorizer token; an older one is still good.
    let answer = api
        .send_text(&authorizer_token, "openid-alice", "hello")
        .await;
    assert_eq!(answer, json!({"errcode": 0, "errmsg": "ok"}));
    let older = format!("authorizer-token-{SHOP}-1");
    let answer = api
        .post(
            "/cgi-bin/message/custom/send",
            &[("access_token", &older)],
            json!({"touser": "openid-bob", "msgtype": "news",
                   "news": {"articles": [{"title": "Sale", "url": "https://example.com"}]}}),
        )
        .await;
    assert_eq!(errcode(&answer), 0);
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (
            sent[0].authorizer_appid.as_str(),
            sent[0].touser.as_str(),
            sent[0].msgtype.as_str(),
            sent[0].content.as_str()
        ),
        (SHOP, "openid-alice", "text", "hello")
    );
    assert_eq!(
        (sent[1].msgtype.as_str(), sent[1].content.as_str()),
        ("news", "Sale")
    );

    // A made-up token, the component token, an expired authorizer token: 40001.
    let refusals = fake.credential_refusals();
    for token in ["made-up", component.as_str()] {
        let answer = api.send_text(token, "openid-alice", "hello").await;
        assert_eq!(errcode(&answer), 40001, "{token}");
    }
    fake.expire_authorizer_tokens(SHOP);
    let answer = api.send_text(&authorizer_token, "openid-alice", "x").await;
    assert_eq!(errcode(&answer), 40001);
    let answer = api
        .post(
            "/cgi-bin/message/custom/send",
            &[],
            json!({"touser": "a", "msgtype": "text", "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(errcode(&answer), 41001);
    assert_eq!(fake.credential_refusals(), refusals + 3);
    assert_eq!(fake.sent().len(), 2);
    assert_eq!(fake.send_requests(), 6);
}

#[tokio::test]
async fn a_refresh_token_invalidated_alone_is_recovered_from_the_list() {
    let fake = FakeOpen::start();
    let api = Api::new(&fake);
    let component = api.component_token(&fake).await;
    for appid in [SHOP, CAFE] {
        let code = fake.authorize(appid, &[1]);
        let answer = api
            .component(
                "api_query_auth",
                &component,
                json!({"authorization_code": code}),
            )
            .await;
        assert_eq!(answer["authorization_info"]["authorizer_appid"], appid);
    }
    let held = fake.current_refresh_token(SHOP).unwrap();
    let issued_token = format!("authorizer-token-{SHOP}-1");

    fake.invalidate_refresh_token_only(SHOP);
    let refresh = |token: &str| json!({"authorizer_appid": SHOP, "authorizer_refresh_token": token.to_owned()});
    let answer = api
        .component("api_authorizer_token", &component, refresh(&held))
        .await;
    assert_eq!(
        answer,
        json!({"errcode": 61023, "errmsg": "refresh_token is invalid"})
    );
    // Its access tokens still work.
    let answer = api.send_text(&issued_token, "openid-alice", "hi").await;
    assert_eq!(errcode(&answer), 0);

    let answer = api
        .component(
            "api_get_authorizer_list",
            &component,
            json!({"offset": 0, "count": 100}),
        )
        .await;
    assert_eq!(answer["total_count"], 2);
    let list = answer["list"].as_array().unwrap();
    assert_eq!(list[0]["authorizer_appid"], CAFE, "sorted by appid");
    assert!(list[0]["auth_time"].as_u64().unwrap() > 1_600_000_000);
    let recovered = list
        .iter()
        .find(|entry| entry["authorizer_appid"] == SHOP)
        .map(|entry| str_of(entry, "refresh_token"))
        .unwrap();
    assert_ne!(recovered, held);
    let answer = api
        .component("api_authorizer_token", &component, refresh(&recovered))
        .await;
    assert_eq!(str_of(&answer, "authorizer_refresh_token"), recovered);
    assert_eq!(fake.authorizer_list_calls(), 1);

    // Paging.
    let answer = api
        .component(
            "api_get_authorizer_list",
            &component,
            json!({"offset": 1, "count": 1}),
        )
        .await;
    assert_eq!(answer["total_count"], 2);
    assert_eq!(answer["list"].as_array().unwrap().len(), 1);
    assert_eq!(answer["list"][0]["authorizer_appid"], SHOP);
    let answer = api
        .component(
            "api_get_authorizer_list",
            &component,
            json!({"offset": 0, "count": 501}),
        )
        .await;
    assert_eq!(errcode(&answer), 40170);

    // Revoked: gone from the list, its tokens dead, its info refused.
    fake.revoke(SHOP);
    let answer = api
        .component(
            "api_get_authorizer_list",
            &component,
            json!({"offset": 0, "count": 500}),
        )
        .await;
    assert_eq!(answer["total_count"], 1);
    assert_eq!(answer["list"][0]["authorizer_appid"], CAFE);
    let answer = api
        .component("api_authorizer_token", &component, refresh(&recovered))
        .await;
    assert_eq!(errcode(&answer), 61023);
    let answer = api.send_text(&issued_token, "openid-alice", "hi").await;
    assert_eq!(errcode(&answer), 40001);
    let answer = api
        .component(
            "api_get_authorizer_info",
            &component,
            json!({"authorizer_appid": SHOP}),
        )
        .await;
    assert_eq!(errcode(&answer), 61003);
    assert_eq!(fake.current_refresh_token(SHOP), None);

    // Re-authorizing brings it back with a new refresh token.
    let code = fake.authorize(SHOP, &[1]);
    let answer = api
        .component(
            "api_query_auth",
            &component,
            json!({"authorization_code": code}),
        )
        .await;
    assert_eq!(
        Some(str_of(
            &answer,
            "authorization_info/authorizer_refresh_token"
        )),
        fake.current_refresh_token(SHOP)
    );
}

#[tokio::test]
async fn the_authorization_pages_redirect_with_an_auth_code() {
    let fake = FakeOpen::start();
    let api = Api::new(&fake);
    let component = api.component_token(&fake).await;
    let mut pre_auth = Vec::new();
    for _ in 0..3 {
        let answer = api
            .component("api_create_preauthcode", &component, json!({}))
            .await;
        pre_auth.push(str_of(&answer, "pre_auth_code"));
    }

    // No administrator yet: the page waits, and the code is not used up.
    let pc = |code: &str, redirect: &str| {
        vec![
            ("component_appid", COMPONENT_APP_ID.to_owned()),
            ("pre_auth_code", code.to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("auth_type", "1".to_owned()),
        ]
    };
    let get = |query: Vec<(&'static str, String)>, path: &'static str| {
        let api = &api;
        async move {
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.get(path, &query).await
        }
    };
    let page = "/cgi-bin/componentloginpage";
    let response = get(pc(&pre_auth[0], "https://shop.example.com/cb"), page).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("waiting for the administrator")
    );

    fake.set_next_authorizer(SHOP, &[1, 2]);
    let response = get(pc(&pre_auth[0], "https://shop.example.com/cb?x=1"), page).await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "https://shop.example.com/cb?x=1&auth_code=queryauthcode@@@1&expires_in=600"
    );
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "auth_code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let answer = api
        .component(
            "api_query_auth",
            &component,
            json!({"authorization_code": code}),
        )
        .await;
    assert_eq!(answer["authorization_info"]["authorizer_appid"], SHOP);
    assert_eq!(
        answer["authorization_info"]["func_info"],
        json!([{"funcscope_category": {"id": 1}}, {"funcscope_category": {"id": 2}}])
    );

    // A used code, an unknown one, another component: refused.
    fake.set_next_authorizer(CAFE, &[1]);
    for query in [
        pc(&pre_auth[0], "https://shop.example.com/cb"),
        pc("preauthcode@@@99", "https://shop.example.com/cb"),
        {
            let mut q = pc(&pre_auth[1], "https://shop.example.com/cb");
            q[0].1 = "wxothercomponent".into();
            q
        },
    ] {
        let response = get(query, page).await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("pre_auth_code invalid")
        );
    }

    // The mobile page, with biz_appid; still the next authorizer set above.
    let mut mobile = vec![
        ("action", "bindcomponent".to_owned()),
        ("no_scan", "1".to_owned()),
    ];
    mobile.extend(pc(&pre_auth[2], "https://shop.example.com/cb"));
    mobile.push(("biz_appid", CAFE.to_owned()));
    let response = get(mobile, "/wxaopen/safe/bindcomponent").await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://shop.example.com/cb?auth_code=queryauthcode@@@2&expires_in=600"
    );
    assert!(fake.current_refresh_token(CAFE).is_some());

    let visits = fake.login_visits();
    assert_eq!(visits.len(), 3);
    assert_eq!(
        visits[2],
        LoginVisit {
            page: "mobile",
            auth_type: "1".into(),
            biz_appid: Some(CAFE.into()),
            redirect_uri: "https://shop.example.com/cb".into(),
            referer: Some("https://open.example.com/authorize".into()),
        }
    );
    assert_eq!(
        (
            visits[0].page,
            visits[1].redirect_uri.as_str(),
            &visits[1].biz_appid
        ),
        ("pc", "https://shop.example.com/cb?x=1", &None)
    );
}

#[tokio::test]
async fn component_token_refusals() {
    let fake = FakeOpen::start();
    let api = Api::new(&fake);
    let ticket = fake.issue_ticket();

    let answer = api
        .component_token_with("wxsomeoneelse", COMPONENT_SECRET, &ticket)
        .await;
    assert_eq!(errcode(&answer), 61011);
    let answer = api
        .component_token_with(COMPONENT_APP_ID, "wrong-secret", &ticket)
        .await;
    assert_eq!(
        answer,
        json!({"errcode": 40125, "errmsg": "invalid appsecret"})
    );
    let answer = api
        .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, "ticket@@@7")
        .await;
    assert_eq!(errcode(&answer), 61006);
    let answer = api
        .post_raw(
            "/cgi-bin/component/api_component_token",
            &[],
            "not json".into(),
        )
        .await;
    assert_eq!(errcode(&answer), 47001);

    fake.set_whitelisted(false);
    let answer = api
        .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, &ticket)
        .await;
    assert_eq!(
        answer,
        json!({"errcode": 61004, "errmsg": "api forbidden for ip"})
    );
    fake.set_whitelisted(true);

    // Every success issues a new token; the earlier one stays valid.
    fake.set_component_expires_in(60);
    let first = api
        .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, &ticket)
        .await;
    assert_eq!(first["expires_in"], 60);
    let second = api.component_token(&fake).await;
    assert_eq!(second, "component-token-2");
    let first = str_of(&first, "component_access_token");
    for token in [&first, &second] {
        let answer = api
            .component("api_create_preauthcode", token, json!({}))
            .await;
        assert!(answer.get("pre_auth_code").is_some(), "{token}: {answer}");
    }

    fake.expire_tickets();
    let answer = api
        .component_token_with(COMPONENT_APP_ID, COMPONENT_SECRET, &ticket)
        .await;
    assert_eq!(
        answer,
        json!({"errcode": 61005, "errmsg": "component_verify_ticket is expired"})
    );
    assert_eq!(fake.component_token_fetches(), 8);
    assert_eq!(fake.component_tokens_issued(), 2);

    // Component tokens: missing, made up, expired; a wrong component_appid in the body.
    let answer = api.component("api_create_preauthcode", "", json!({})).await;
    assert_eq!(errcode(&answer), 41001);
    let answer = api
        .component("api_create_preauthcode", "component-token-9", json!({}))
        .await;
    assert_eq!(errcode(&answer), 40001);
    let answer = api
        .post(
            "/cgi-bin/component/api_create_preauthcode",
            &[("component_access_token", &second)],
            json!({"component_appid": "wxsomeoneelse"}),
        )
        .await;
    assert_eq!(errcode(&answer), 61011);
    fake.expire_component_tokens();
    let answer = api
        .component("api_create_preauthcode", &second, json!({}))
        .await;
    assert_eq!(errcode(&answer), 40001);
    assert_eq!(fake.credential_refusals(), 2);
    assert_eq!(fake.pre_auth_codes_issued(), 2);

    // api_start_push_ticket checks the same credentials and only records the request.
    let push =
        |appid: &str, secret: &str| json!({"component_appid": appid, "component_secret": secret});
    let path = "/cgi-bin/component/api_start_push_ticket";
    let answer = api
        .post(path, &[], push(COMPONENT_APP_ID, COMPONENT_SECRET))
        .await;
    assert_eq!(answer, json!({"errcode": 0, "errmsg": "ok"}));
    let answer = api.post(path, &[], push(COMPONENT_APP_ID, "nope")).await;
    assert_eq!(errcode(&answer), 40125);
    let answer = api.post(path, &[], push("wxnope", COMPONENT_SECRET)).await;
    assert_eq!(errcode(&answer), 61011);
    assert_eq!(fake.push_ticket_requests(), 3);
}

#[tokio::test]
async fn authorization_codes_expire_and_can_be_single_use() {
    let fake = FakeOpen::start();
    let api = Api::new(&fake);
    let component = api.component_token(&fake).await;
    let exchange = |code: String| {
        let (api, component) = (&api, &component);
        async move {
            api.component(
                "api_query_auth",
                component,
                json!({"authorization_code": code}),
            )
            .await
        }
    };

    let code = fake.authorize(SHOP, &[1]);
    assert!(
        exchange(code.clone())
            .await
            .get("authorization_info")
            .is_some()
    );
    assert!(
        exchange(code.clone())
            .await
            .get("authorization_info")
            .is_some()
    );
    fake.set_auth_codes_single_use(true);
    let answer = exchange(code).await;
    assert_eq!(
        answer,
        json!({"errcode": 61009, "errmsg": "code is invalid"})
    );

    let code = fake.authorize(SHOP, &[1]);
    fake.expire_auth_codes();
    assert_eq!(
        exchange(code).await,
        json!({"errcode": 61010, "errmsg": "code is expired"})
    );
    assert_eq!(errcode(&exchange("queryauthcode@@@42".into()).await), 61009);

    // Re-authorizing replaces the refresh token.
    let code = fake.authorize(SHOP, &[1]);
    let answer = exchange(code).await;
    assert_eq!(
        str_of(&answer, "authorization_info/authorizer_refresh_token"),
        format!("refreshtoken@@@{SHOP}@@@3")
    );
    let old = format!("refreshtoken@@@{SHOP}@@@2");
    let answer = api
        .component(
            "api_authorizer_token",
            &component,
            json!({"authorizer_appid": SHOP, "authorizer_refresh_token": old}),
        )
        .await;
    assert_eq!(errcode(&answer), 61023);
    assert_eq!(fake.query_auths(), 6);

    // Injected failures hit only the endpoint named, the given number of times.
    fake.fail_next("api_authorizer_token", -1, 2);
    let current = fake.current_refresh_token(SHOP).unwrap();
    let body = json!({"authorizer_appid": SHOP, "authorizer_refresh_token": current});
    for expected in [-1, -1, 0] {
        let answer = api
            .component("api_authorizer_token", &component, body.clone())
            .await;
        assert_eq!(
            answer["errcode"].as_i64().unwrap_or(0),
            expected,
            "{answer}"
        );
    }
    assert_eq!(fake.authorizer_refreshes(SHOP), 4);

    // The delay applies to every request.
    fake.set_delay(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let answer = api
        .component("api_authorizer_token", &component, body)
        .await;
    assert!(answer.get("authorizer_access_token").is_some());
    assert!(started.elapsed() >= Duration::from_millis(200));
}
