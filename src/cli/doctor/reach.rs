//! Check 3: the deployed URL can be reached the way the platform reaches it: its name
//! resolves, its port accepts a connection, its TLS certificate is one the platform trusts,
//! the scheme and port are ones the console accepts, and each app's route answers as wxgate
//! does.

use std::time::Duration;

use super::report::Line;
use crate::config::AppConfig;
use crate::platform::Platform;

/// How long the platform waits for a callback's answer; the probes wait as long.
pub(super) const PLATFORM_WAIT: Duration = Duration::from_secs(5);

/// The gateway's base URL as given with `--url`, split for the checks.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// Scheme, host, port and path prefix (an API Gateway stage), without a trailing `/`.
    pub base: String,
    host: String,
    port: u16,
    https: bool,
}

impl Target {
    /// Parses `--url`. A full callback URL (ending in an app's route) is cut back to the
    /// gateway's base, since that is what a newcomer copies from a console.
    ///
    /// # Errors
    /// Not an http(s) URL with a host; the message is for a usage error.
    pub fn parse(raw: &str, apps: &[AppConfig]) -> Result<Self, String> {
        let mut url = crate::cli::send_url::gateway_url(raw).map_err(|e| e.to_string())?;
        let https = url.scheme() == "https";
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        let path = url.path().to_owned();
        let base_path = apps
            .iter()
            .map(|app| crate::cli::send_url::base_path(&path, &app.route()))
            .find(|base| base.len() < path.trim_end_matches('/').len())
            .unwrap_or_else(|| path.trim_end_matches('/'));
        url.set_path(base_path);
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            base,
            host,
            port,
            https,
        })
    }

    fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// DNS, then a TCP connection, then (https) a TLS handshake: the first that fails.
/// The name of the host check's line.
pub(super) const HOST_CHECK: &str = "URL: reachable";

pub(super) async fn host(client: &reqwest::Client, target: &Target) -> Line {
    let what = HOST_CHECK;
    let host_port = target.host_port();
    let addrs = match tokio::time::timeout(PLATFORM_WAIT, tokio::net::lookup_host(&host_port)).await {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => {
            return Line::fail(
                what,
                format!("DNS: {} does not resolve ({e})", target.host),
                "the host name is misspelt, or its DNS record does not exist (yet)",
                "copy the URL again from the deployment's output (sam deploy prints it) or create the DNS record of the custom domain",
            );
        }
        Err(_) => {
            return Line::fail(
                what,
                format!("DNS: no answer for {} within 5 s", target.host),
                "this machine's resolver is not answering",
                "check this machine's DNS settings, then run doctor again",
            );
        }
    };
    let Some(addr) = addrs.first().copied() else {
        return Line::fail(
            what,
            format!("DNS: {} has no address", target.host),
            "the DNS record exists but holds no A/AAAA address",
            "point the record at the gateway (the API Gateway custom domain's target)",
        );
    };
    match tokio::time::timeout(PLATFORM_WAIT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Line::fail(
                what,
                format!("connect to {host_port}: connection refused"),
                "nothing listens on that port: the gateway is not running there, or the port is wrong",
                "start the gateway (wxgate serve --addr …, or sam deploy) and give --url its address and port",
            );
        }
        Ok(Err(e)) => {
            return Line::fail(
                what,
                format!("connect to {host_port}: {e}"),
                "the address cannot be reached from here",
                "check the address, and that a firewall or security group lets port traffic in",
            );
        }
        Err(_) => {
            return Line::fail(
                what,
                format!("connect to {host_port}: no answer within 5 s"),
                "a firewall, security group or network ACL drops the connection (the platform will time out too)",
                "open the port to the internet (the platform calls from many addresses), or fix the address",
            );
        }
    }
    if !target.https {
        return Line::ok(what, format!("{} → {addr}, connected (http, no TLS)", target.host));
    }
    // Any HTTP answer at all means the handshake and the certificate passed.
    match client.get(format!("{}/", target.base)).timeout(PLATFORM_WAIT).send().await {
        Ok(_) => Line::ok(
            what,
            format!("{} → {addr}, connected, TLS certificate trusted", target.host),
        ),
        Err(e) if e.is_timeout() => Line::fail(
            what,
            format!("TLS to {host_port}: no answer within 5 s"),
            "the port accepts connections but does not complete a TLS handshake",
            "check that the port serves HTTPS (API Gateway, a load balancer with a certificate)",
        ),
        Err(e) => {
            let chain = crate::http::error_chain(&e.without_url());
            if chain.to_ascii_lowercase().contains("certificate") {
                Line::fail(
                    what,
                    format!("TLS to {host_port}: {chain}"),
                    "the certificate is not one the platform trusts: self-signed, expired, for another name, or served without its intermediate chain",
                    "serve a certificate from a public CA that covers the host, with its full chain (an API Gateway URL or an ACM certificate on a custom domain has one)",
                )
            } else {
                Line::fail(
                    what,
                    format!("TLS to {host_port}: {chain}"),
                    "the port does not speak TLS: https:// given for a plain HTTP server, or the wrong port",
                    "use the scheme and port the server really serves (http:// for `wxgate serve`; https:// for API Gateway)",
                )
            }
        }
    }
}

/// The scheme and port the console accepts for the apps' platforms. WeCom's "接收消息与事件"
/// documents http or https (https recommended) without a port rule; the Official Account's
/// 服务器配置 takes only http on 80 and https on 443, and the Open Platform the same.
pub(super) fn scheme(target: &Target, apps: &[&AppConfig]) -> Line {
    let what = "URL: scheme and port";
    let standard = if target.https { 443 } else { 80 };
    let strict: Vec<&str> = apps
        .iter()
        // The ones whose consoles the message below names; WeCom's (its apps' and its AI
        // bots') take any port.
        .filter(|a| matches!(a.platform, Platform::Mp | Platform::Open))
        .map(|a| a.name.as_str())
        .collect();
    if target.port != standard && !strict.is_empty() {
        return Line::fail(
            what,
            format!(
                "{}:// on port {} for {}",
                if target.https { "https" } else { "http" },
                target.port,
                strict.join(", ")
            ),
            "the Official Account and Open Platform consoles take only http on port 80 and https on port 443",
            "serve the gateway on the standard port (API Gateway does), or put a reverse proxy on 443 in front of it",
        );
    }
    let note = if target.https {
        "https"
    } else {
        "http (the consoles accept it; https keeps the URL's signature from being read on the way)"
    };
    Line::ok(what, format!("{note}, port {}", target.port))
}

/// `GET {base}{route}` without a signature: wxgate refuses it with 400 naming the missing
/// parameter, so any other answer says what stands in the way.
pub(super) async fn route(client: &reqwest::Client, target: &Target, app: &AppConfig) -> Line {
    let what = format!("{}: route", app.name);
    let url = format!("{}{}", target.base, app.route());
    let started = std::time::Instant::now();
    let response = match client.get(&url).timeout(PLATFORM_WAIT).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Line::fail(
                what,
                format!("GET {url}: no answer within 5 s"),
                "something in front of the gateway holds the request (a WAF, an authorizer), or the function is too slow to start",
                "let unauthenticated requests to the route through (the platform signs them, it does not log in), and check the function's duration",
            );
        }
        Err(e) => {
            return Line::fail(
                what,
                format!("GET {url}: {}", crate::http::error_chain(&e.without_url())),
                "the request failed after the connection was made",
                "check the gateway's logs",
            );
        }
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let first = first_line(&body);
    let waited = started.elapsed().as_millis();
    match status {
        400 if body.starts_with("Bad Request: ") => {
            Line::ok(what, format!("GET {url} → 400 from wxgate in {waited} ms (unsigned, as expected)"))
        }
        404 => {
            let by = if body.starts_with("Not Found: ") {
                "wxgate answers there but serves no app of this name"
            } else {
                "the server has no such path"
            };
            Line::fail(
                what,
                format!("GET {url} → 404: {first}"),
                format!("{by}: the app name, the platform segment or the URL's path prefix (an API Gateway stage) is wrong, or the deployed config differs from this one"),
                format!("give the console exactly {url}; deploy the config that has app \"{}\"", app.name),
            )
        }
        401 | 403 | 407 => Line::fail(
            what,
            format!("GET {url} → {status}: {first}"),
            "something in front of wxgate refuses the request (a WAF rule, an IAM/Cognito/Lambda authorizer, an IP allowlist): wxgate itself answers an unsigned request with 400",
            "remove the authorizer from the callback routes and let the platform's addresses through the WAF; the callbacks are authenticated by their signature",
        ),
        300..=399 => Line::fail(
            what,
            format!("GET {url} → {status} redirect"),
            "the platform does not follow redirects",
            "give the console the URL the redirect leads to (usually https:// instead of http://)",
        ),
        500..=599 => Line::fail(
            what,
            format!("GET {url} → {status}: {first}"),
            "the gateway fails: API Gateway answers 502/503 when the function crashes or cannot start (often an invalid WXGATE_CONFIG)",
            "read the function's logs (sam logs) and run `wxgate check` on the deployed config",
        ),
        _ => Line::fail(
            what,
            format!("GET {url} → {status}: {first}"),
            "the server that answered is not wxgate (wxgate refuses an unsigned request with 400)",
            "point the URL at the gateway (not at a website or another service on the same host)",
        ),
    }
}

/// The first line of an answer's body, shortened: enough to recognise who answered.
pub(super) fn first_line(body: &str) -> String {
    crate::escape::shown(body.lines().next().unwrap_or("").trim(), 120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const APPS: &str = r#"
[[apps]]
name = "demo"
platform = "wecom"
corp_id = "wx5823bf96d3bd56c7"
agent_id = 1
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
"#;

    fn base(raw: &str) -> Result<String, String> {
        let config = Config::parse(APPS).unwrap();
        Target::parse(raw, &config.apps).map(|t| t.base)
    }

    /// `--url` is read as `wxgate send` reads it, then cut back to the gateway's base.
    #[test]
    fn the_url_is_read_as_send_reads_it_and_cut_to_the_base() {
        assert_eq!(base("http://127.0.0.1:3000").unwrap(), "http://127.0.0.1:3000");
        assert_eq!(base("localhost:3000/wecom/demo").unwrap(), "http://localhost:3000");
        assert_eq!(
            base("https://h.example.com/Prod/wecom/demo/").unwrap(),
            "https://h.example.com/Prod"
        );
        assert_eq!(
            base("https://h.example.com/Prod").unwrap(),
            "https://h.example.com/Prod"
        );
        for refused in ["http://h/wecom/demo#x", "http://h/?a=1", "ftp://h", "h.example.com"] {
            assert!(base(refused).is_err(), "{refused}");
        }
        let e = base("https://user:secret-pw@h.example.com").unwrap_err();
        assert!(!e.contains("secret-pw"), "{e}");
    }
}
