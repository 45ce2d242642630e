//! tinyhealth's router called in-process (no socket), as a fuzzer or an
//! in-process transport would: absolute links come from the `Host` header,
//! and a hostile `Host` cannot inject URL syntax into them.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tinyhealth::{FaultSet, router};
use tower::ServiceExt as _;

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    host: &str,
    cookie: Option<&str>,
    json: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, host);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let body = match json {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_owned())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

#[tokio::test]
async fn links_follow_the_host_header_and_refuse_hostile_ones() {
    // Goal: the in-process router builds status URLs and download links from
    // the request's Host, and falls back to `localhost` for a Host with URL
    // syntax in it. Method: a whole flow through `oneshot`, then the link.
    let app = router(FaultSet::none());
    let signup = r#"{"username":"ivy","password":"correct horse","full_name":"Ivy"}"#;
    let (status, _, body) = call(&app, "POST", "/api/accounts", "h:1", None, Some(signup)).await;
    assert_eq!(status, StatusCode::CREATED);
    let account: Value = serde_json::from_slice(&body).unwrap();
    let id = account["account"]["id"].as_str().unwrap().to_owned();
    let signin = r#"{"username":"ivy","password":"correct horse"}"#;
    let (status, headers, _) = call(&app, "POST", "/api/sessions", "h:1", None, Some(signin)).await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let booking = r#"{"starts_at":"2026-12-01T09:00:00Z"}"#;
    let (status, headers, _) = call(
        &app,
        "POST",
        &format!("/api/accounts/{id}/visits"),
        "h:1",
        Some(&cookie),
        Some(booking),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let visit = headers[header::LOCATION].to_str().unwrap().to_owned();
    let (status, _, body) = call(
        &app,
        "POST",
        &format!("{visit}/consultations"),
        "h:1",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let consultation: Value = serde_json::from_slice(&body).unwrap();
    let c = consultation["consultation"]["id"].as_str().unwrap();
    let clip = consultation["consultation"]["clip"]["ref"]
        .as_str()
        .unwrap();

    let (status, headers, _) = call(
        &app,
        "POST",
        &format!("/api/consultations/{c}/video"),
        "clinic.example:8443",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let location = headers[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("http://clinic.example:8443/api/operations/op_"));

    for (host, base) in [
        ("h:1", "http://h:1/files/clips/"),
        ("evil.example/x?y=", "http://localhost/files/clips/"),
    ] {
        let (status, _, body) = call(
            &app,
            "GET",
            &format!("/api/clips/{clip}"),
            host,
            Some(&cookie),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let meta: Value = serde_json::from_slice(&body).unwrap();
        let link = meta["download_url"].as_str().unwrap();
        assert!(link.starts_with(base), "{host}: {link}");
        // The link's path and query work whatever host it names.
        let path = &link[link.find("/files/").unwrap()..];
        let (status, headers, _) = call(&app, "GET", path, "other", None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["x-clip-kind"], "audio");
    }
}
