//! The plain-HTTP warning banner (issue 15 item 4): the dashboard is meant to be reached over
//! HTTPS only (nginx terminates TLS and proxies to the loopback listener or the proxy socket).
//! When issuing its certificate failed, the installer falls back to plain HTTP on the public
//! address, and every page must then say so. Rather than threading a flag through every page's
//! view model, this middleware puts the banner right after `<body …>` of every full HTML page
//! (never htmx fragments, JSON or event streams) whose request crossed the network in cleartext
//! ([`plain_http_over_network`]).

use askama::Template;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::Response;

use super::session::{plain_http_over_network, Peer, Via};
use crate::state::AppState;

/// Pages are buffered to insert the banner. The biggest are job pages with a long Ansible log
/// (a few MiB at most); a body declared bigger is passed through untouched.
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Template)]
#[template(path = "partials/cphttps_plain_http_banner.html")]
struct Banner;

/// The banner's HTML (also what tests look for: `data-test="plain-http-banner"`).
pub fn banner_html() -> String {
    Banner.render().expect("a static template renders")
}

/// Adds the banner to full HTML pages of cleartext requests from the network.
pub async fn banner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let peer = Peer(req.extensions().get::<ConnectInfo<Via>>().map(|c| c.0));
    let wanted = plain_http_over_network(req.headers(), &peer, &state.config)
        && !req.headers().contains_key("hx-request");
    let response = next.run(req).await;
    if !wanted || !is_html(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_PAGE_BYTES)
    {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = to_bytes(body, MAX_PAGE_BYTES).await else {
        // Unreadable or over the limit: the body is gone; say so instead of a cut page.
        return Response::builder()
            .status(500)
            .body(Body::from("response too large"))
            .expect("a static response");
    };
    let html = String::from_utf8_lossy(&bytes);
    let out = match body_tag_end(&html) {
        Some(at) => format!("{}\n{}{}", &html[..at], banner_html(), &html[at..]),
        None => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// The byte offset right after the `<body …>` start tag: a full page has one, a fragment none.
fn body_tag_end(html: &str) -> Option<usize> {
    let start = html.find("<body")?;
    let close = html[start..].find('>')?;
    Some(start + close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_goes_right_after_the_body_tag() {
        let page = "<html><head></head><body class=\"app\"><main>x</main></body></html>";
        let at = body_tag_end(page).unwrap();
        assert_eq!(&page[..at], "<html><head></head><body class=\"app\">");
        assert_eq!(body_tag_end("<div>fragment</div>"), None);
        assert!(banner_html().contains("data-test=\"plain-http-banner\""));
        assert!(banner_html().contains("This dashboard is served over plain HTTP"));
    }
}
