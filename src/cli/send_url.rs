//! Where `wxgate send` posts: the `--url` a user gives, which may be the gateway's base URL
//! (`http://127.0.0.1:3000`, an API Gateway stage) or the app's full callback URL as pasted
//! into the platform's console (`…/wecom/demo`), joined with the signed request's route.

use reqwest::Url;

/// Why `--url` cannot be used; the text says what to pass instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum UrlError {
    /// Not a URL at all, or one without a host.
    #[error(
        "--url {0:?} is not a URL: pass the gateway's base URL, e.g. http://127.0.0.1:3000 or https://abc.execute-api.ap-east-1.amazonaws.com/Prod"
    )]
    Invalid(String),
    /// A scheme other than http and https.
    #[error("--url {0:?}: only http:// and https:// URLs can be sent to")]
    Scheme(String),
    /// No scheme, and not a loopback host (where plain http is assumed).
    #[error(
        "--url {0:?} has no scheme: write https://{0} (or http:// for a gateway without TLS)"
    )]
    NoScheme(String),
    /// A user name or password in the URL: the platform sends none, and the URL is not
    /// repeated in errors.
    #[error("--url holds credentials (user:password@): pass the gateway's URL without them")]
    Credentials,
    /// A query or fragment, which the signed request's own query would collide with.
    #[error(
        "--url {0:?} has a query or fragment: pass the base URL or the callback URL without one (send signs its own query)"
    )]
    Query(String),
}

/// The URL to request: `given` (the `--url` value) joined with `path_and_query` (the signed
/// request's `/{platform}/{app}…?…`).
///
/// * A path that already ends with the request's route, or with the app's route
///   (`/{platform}/{app}`, for an Open Platform account's `/open/{app}/{appid}`), is the
///   callback URL itself: the route is not appended twice.
/// * Any other path is a base (a stage such as `/Prod`), and the route is appended.
/// * Without a scheme, a loopback host (`127.0.0.1:3000`, `localhost:3000`, `[::1]:3000`)
///   means `http://`, as `wxgate serve` speaks; any other host is an error, since guessing
///   between http and https there would send the callback somewhere unintended.
pub(super) fn request_url(given: &str, path_and_query: &str) -> Result<Url, UrlError> {
    let mut url = gateway_url(given)?;
    let (route, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let base = base_path(url.path(), app_route(route)).to_owned();
    url.set_path(&format!("{base}{route}"));
    url.set_query((!query.is_empty()).then_some(query));
    Ok(url)
}

/// `given` (a `--url` value: the gateway's base URL or a callback URL) checked and parsed:
/// http or https with a host (a loopback host without a scheme means `http://`), no
/// credentials, no query or fragment. `wxgate send` and `wxgate doctor` read `--url` so.
pub(super) fn gateway_url(given: &str) -> Result<Url, UrlError> {
    let given = given.trim();
    let with_scheme = if given.contains("://") {
        given.to_owned()
    } else if is_loopback(given) {
        format!("http://{given}")
    } else if given.is_empty() || given.starts_with('/') {
        return Err(UrlError::Invalid(given.to_owned()));
    } else {
        return Err(UrlError::NoScheme(given.to_owned()));
    };
    let url = Url::parse(&with_scheme).map_err(|_| UrlError::Invalid(given.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(given.to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Invalid(given.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlError::Query(given.to_owned()));
    }
    Ok(url)
}

/// The gateway's base part of `path`: without a trailing `/` and without a trailing
/// `app_route` (`/{platform}/{app}`), or, for an Open Platform app, that route and an
/// account's AppID after it (`/open/{app}/{appid}`), since a newcomer pastes the callback
/// URL from a console. Any other path is a base (a stage such as `/Prod`).
pub(super) fn base_path<'p>(path: &'p str, app_route: &str) -> &'p str {
    let path = path.trim_end_matches('/');
    if app_route.is_empty() {
        return path;
    }
    if let Some(base) = path.strip_suffix(app_route) {
        return base;
    }
    match path.rsplit_once('/') {
        Some((head, appid)) if app_route.starts_with("/open/") && !appid.is_empty() => {
            head.strip_suffix(app_route).unwrap_or(path)
        }
        _ => path,
    }
}

/// `/{platform}/{app}`: the first two segments of `route`.
fn app_route(route: &str) -> &str {
    let mut slashes = route.match_indices('/').map(|(i, _)| i).skip(2);
    match slashes.next() {
        Some(end) => &route[..end],
        None => route,
    }
}

/// Whether a URL written without a scheme names this machine.
fn is_loopback(without_scheme: &str) -> bool {
    let authority = without_scheme.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL without its query, to name where nothing answered.
pub(super) fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

/// `scheme://host:port` of `url`: where `wxgate serve` would have to listen.
pub(super) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "/wecom/demo?msg_signature=s&timestamp=1&nonce=n";

    fn url(given: &str, path_and_query: &str) -> String {
        request_url(given, path_and_query).unwrap().to_string()
    }

    #[test]
    fn a_base_url_gets_the_route_appended() {
        let want = "http://127.0.0.1:3000/wecom/demo?msg_signature=s&timestamp=1&nonce=n";
        assert_eq!(url("http://127.0.0.1:3000", SIGNED), want);
        assert_eq!(url("http://127.0.0.1:3000/", SIGNED), want);
        assert_eq!(
            url("https://abc.example.com/Prod/", SIGNED),
            "https://abc.example.com/Prod/wecom/demo?msg_signature=s&timestamp=1&nonce=n"
        );
    }

    #[test]
    fn the_callback_url_itself_is_used_as_it_is() {
        let want = "http://127.0.0.1:8080/wecom/demo?msg_signature=s&timestamp=1&nonce=n";
        assert_eq!(url("http://127.0.0.1:8080/wecom/demo", SIGNED), want);
        assert_eq!(url("http://127.0.0.1:8080/wecom/demo/", SIGNED), want);
        assert_eq!(
            url("https://h.example.com/Prod/wecom/demo", SIGNED),
            "https://h.example.com/Prod/wecom/demo?msg_signature=s&timestamp=1&nonce=n"
        );
        // Another app's route is a base path, not this app's URL.
        assert_eq!(
            url("http://h/wecom/other", SIGNED),
            "http://h/wecom/other/wecom/demo?msg_signature=s&timestamp=1&nonce=n"
        );
    }

    #[test]
    fn an_open_platform_account_route_accepts_the_component_url_too() {
        let signed = "/open/comp/wxACCOUNT?signature=s";
        let want = "http://h/open/comp/wxACCOUNT?signature=s";
        assert_eq!(url("http://h", signed), want);
        assert_eq!(url("http://h/open/comp", signed), want);
        assert_eq!(url("http://h/open/comp/wxACCOUNT", signed), want);
    }

    #[test]
    fn a_loopback_address_without_a_scheme_means_http() {
        let want = "http://127.0.0.1:8080/wecom/demo?msg_signature=s&timestamp=1&nonce=n";
        assert_eq!(url("127.0.0.1:8080", SIGNED), want);
        assert_eq!(url("127.0.0.1:8080/wecom/demo", SIGNED), want);
        assert!(url("localhost:3000", SIGNED).starts_with("http://localhost:3000/wecom/demo?"));
        assert!(url("[::1]:3000", SIGNED).starts_with("http://[::1]:3000/wecom/demo?"));
    }

    #[test]
    fn unusable_urls_are_typed_errors_that_say_what_to_pass() {
        assert_eq!(
            request_url("gw.example.com", SIGNED),
            Err(UrlError::NoScheme("gw.example.com".into()))
        );
        assert!(matches!(
            request_url("ftp://h/x", SIGNED),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(request_url("", SIGNED), Err(UrlError::Invalid(_))));
        assert!(matches!(
            request_url("http://", SIGNED),
            Err(UrlError::Invalid(_))
        ));
        assert!(matches!(
            request_url("http://h/wecom/demo?x=1", SIGNED),
            Err(UrlError::Query(_))
        ));
        assert_eq!(
            request_url("http://user:pw@h/wecom/demo", SIGNED),
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            request_url("http://h/wecom/demo#x", SIGNED),
            Err(UrlError::Query(_))
        ));
        let text = request_url("gw.example.com:8080", SIGNED)
            .unwrap_err()
            .to_string();
        assert!(text.contains("https://gw.example.com:8080"), "{text}");
    }

    #[test]
    fn where_nothing_answered_is_named_without_the_signed_query() {
        let u = request_url("http://127.0.0.1:9", SIGNED).unwrap();
        assert_eq!(shown(&u), "http://127.0.0.1:9/wecom/demo");
        assert_eq!(origin(&u), "http://127.0.0.1:9");
    }
}
