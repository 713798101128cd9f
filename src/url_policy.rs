//! Which URLs wxgate sends secrets and users' messages to: `https://`, or `http://` to a
//! loopback host only (a local test server or a sidecar). Plain HTTP anywhere else would put
//! an app secret (`gettoken` carries it in the query), an access token or a user's message
//! on the network in clear text.

use std::net::IpAddr;

use reqwest::Url;

/// Checks an outbound URL: `https://`, or `http://` to a loopback host, with a host and no
/// credentials or fragment.
///
/// # Errors
/// What is wrong, without repeating the URL (its path or query may hold a key).
pub fn check(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => {
            return Err(
                "http:// is only accepted for a loopback host (localhost, 127.0.0.1, [::1]); use https://"
                    .into(),
            );
        }
        other => return Err(format!("the scheme must be https, not {other}")),
    }
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL carries credentials".into());
    }
    if url.fragment().is_some() {
        return Err("the URL has a #fragment, which is never sent".into());
    }
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://qyapi.weixin.qq.com",
            "https://proxy.example.com:8443/wechat/",
            "http://127.0.0.1:8080",
            "http://localhost/",
            "http://[::1]:9000",
            "http://127.0.0.2:1",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://api.weixin.qq.com", "loopback"),
            ("http://10.0.0.1", "loopback"),
            ("http://localhost.example.com", "loopback"),
            ("ftp://x", "scheme"),
            ("https://u:p@x", "credentials"),
            ("https://x/#f", "fragment"),
            ("api.weixin.qq.com", "not a URL"),
        ] {
            let e = check(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains(bad), "{e}");
        }
    }
}
