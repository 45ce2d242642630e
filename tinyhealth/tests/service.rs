//! tinyhealth over real HTTP on 127.0.0.1: the full flow for two accounts
//! keeps their data apart with no fault; each fault, planted alone, shows a
//! cross-account effect that the same steps do not show without it; bad
//! input gets the documented error body.
//!
//! Method: start a fresh service per test on an ephemeral loopback port, and
//! drive it with plain reqwest, handling the session cookie by hand as any
//! client without a cookie jar would.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tinyhealth::{EPHEMERAL, Fault, FaultSet, Running};

/// One signed-in account.
struct Account {
    /// Its id.
    id: String,
    /// `th_session=…`, ready for a `Cookie` header.
    cookie: String,
}

/// A client of one running service.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn start(faults: FaultSet) -> (Running, Api) {
        let running = tinyhealth::start(faults, EPHEMERAL).await.unwrap();
        let api = Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: running.url(),
        };
        (running, api)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn sign_up(&self, username: &str) -> Account {
        let response = self
            .http
            .post(self.url("/api/accounts"))
            .json(&json!({
                "username": username,
                "password": "correct horse",
                "full_name": format!("Synthetic {username}"),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        let id = body["account"]["id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/api/accounts/{id}"));
        self.sign_in(username, &id).await
    }

    async fn sign_in(&self, username: &str, id: &str) -> Account {
        let response = self
            .http
            .post(self.url("/api/sessions"))
            .json(&json!({ "username": username, "password": "correct horse" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("th_session="), "{set_cookie}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["session"]["account"], id);
        Account {
            id: id.to_owned(),
            cookie,
        }
    }

    async fn send(
        &self,
        who: &Account,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.url(path_or_url)
        };
        let mut request = self.http.request(method, url).header(COOKIE, &who.cookie);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    async fn get_json(&self, who: &Account, path: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.send(who, reqwest::Method::GET, path, None).await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn book(&self, who: &Account) -> String {
        let (status, headers, body) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/api/accounts/{}/visits", who.id),
                Some(json!({ "starts_at": "2026-12-01T09:00:00Z", "reason": "follow-up" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(body.is_empty(), "the id is in the Location header only");
        let location = headers[LOCATION].to_str().unwrap();
        location.strip_prefix("/api/visits/").unwrap().to_owned()
    }

    /// Starts an audio consultation: (consultation id, audio clip id).
    async fn start_consultation(&self, who: &Account, visit: &str) -> (String, String) {
        let (status, _, body) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/api/visits/{visit}/consultations"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let c = &body["consultation"];
        assert_eq!(c["mode"], "audio");
        (
            c["id"].as_str().unwrap().to_owned(),
            c["clip"]["ref"].as_str().unwrap().to_owned(),
        )
    }

    /// Switches to video and polls until done: the video clip's id.
    async fn switch_to_video(&self, who: &Account, consultation: &str) -> String {
        let (status, headers, body) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/api/consultations/{consultation}/video"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let status_url = headers[LOCATION].to_str().unwrap().to_owned();
        assert_eq!(body["operation"]["status_url"], status_url.as_str());
        assert!(status_url.starts_with(&self.base), "absolute: {status_url}");
        let mut pending = 0;
        for _ in 0..10 {
            let (status, _, body) = self
                .send(who, reqwest::Method::GET, &status_url, None)
                .await;
            assert_eq!(status, StatusCode::OK);
            let body: Value = serde_json::from_slice(&body).unwrap();
            match body["operation"]["status"].as_str().unwrap() {
                "pending" => pending += 1,
                "done" => {
                    assert_eq!(pending, 1, "the first poll is pending");
                    return body["operation"]["result"]["clip"]["ref"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                }
                other => panic!("unexpected operation status {other}"),
            }
        }
        panic!("the video switch never finished");
    }

    async fn upload(&self, who: &Account, consultation: &str, bytes: &[u8]) {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let (status, _, body) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/api/consultations/{consultation}/media"),
                Some(json!({ "data": data })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["received_bytes"], bytes.len());
    }

    async fn end(&self, who: &Account, consultation: &str) {
        let (status, _, _) = self
            .send(
                who,
                reqwest::Method::POST,
                &format!("/api/consultations/{consultation}/end"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Every clip id in `who`'s clip list, following cursors `limit` at a time.
    async fn list_clips(&self, who: &Account, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut path = format!("/api/accounts/{}/clips?limit={limit}", who.id);
        for _ in 0..100 {
            let (status, body) = self.get_json(who, &path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let data = body["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            ids.extend(
                data.iter()
                    .map(|item| item["clip"]["ref"].as_str().unwrap().to_owned()),
            );
            match body["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!(
                        "/api/accounts/{}/clips?limit={limit}&cursor={cursor}",
                        who.id
                    );
                }
                None => return ids,
            }
        }
        panic!("the clip list never ended");
    }

    /// A clip's bytes: its metadata as `who`, then its download link with no
    /// session at all.
    async fn play(&self, who: &Account, clip: &str) -> Vec<u8> {
        let (status, meta) = self.get_json(who, &format!("/api/clips/{clip}")).await;
        assert_eq!(status, StatusCode::OK, "{meta}");
        assert_eq!(meta["clip"]["ref"], clip);
        let link = meta["download_url"].as_str().unwrap();
        assert!(link.starts_with(&self.base), "absolute: {link}");
        let response = self.http.get(link).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.unwrap().to_vec()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// A form-encoded body.
fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

fn one(fault: Fault) -> FaultSet {
    [fault].into_iter().collect()
}

/// One account's whole flow: book, audio with media, switch, video with
/// media, end. Returns (visit, audio clip, video clip).
async fn full_flow(api: &Api, who: &Account, canary: &str) -> (String, String, String) {
    let visit = api.book(who).await;
    let (consultation, audio) = api.start_consultation(who, &visit).await;
    api.upload(who, &consultation, format!("audio {canary}").as_bytes())
        .await;
    let video = api.switch_to_video(who, &consultation).await;
    api.upload(who, &consultation, format!("video {canary}").as_bytes())
        .await;
    api.end(who, &consultation).await;
    (visit, audio, video)
}

#[tokio::test]
async fn two_accounts_keep_their_clips_apart_without_faults() {
    // Goal: with no fault, every list, metadata call, link and erasure keeps
    // each account to its own clips. Method: interleave two accounts' full
    // flows, then read everything back, as the owner and as the other.
    let (running, api) = Api::start(FaultSet::none()).await;
    let a = api.sign_up("ana").await;
    let b = api.sign_up("ben").await;
    let (a_visit, a_audio, a_video) = full_flow(&api, &a, "CANARY-ANA").await;
    let (b_visit, b_audio, b_video) = full_flow(&api, &b, "CANARY-BEN").await;

    for limit in [1, 2, 100] {
        assert_eq!(
            api.list_clips(&a, limit).await,
            [a_audio.clone(), a_video.clone()]
        );
        assert_eq!(
            api.list_clips(&b, limit).await,
            [b_audio.clone(), b_video.clone()]
        );
    }
    let (status, list) = api
        .get_json(&a, &format!("/api/visits/{a_visit}/clips"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][1]["clip"]["kind"], "video");
    assert_eq!(list["data"][1]["clip"]["state"], "ready");

    assert_eq!(api.play(&a, &a_audio).await, b"audio CANARY-ANA");
    assert_eq!(api.play(&a, &a_video).await, b"video CANARY-ANA");
    assert_eq!(api.play(&b, &b_video).await, b"video CANARY-BEN");

    // The other account is refused everywhere.
    for path in [
        format!("/api/clips/{a_audio}"),
        format!("/api/visits/{a_visit}/clips"),
        format!("/api/visits/{a_visit}"),
    ] {
        let (status, body) = api.get_json(&b, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    for path in [
        format!("/api/accounts/{}/clips", a.id),
        format!("/api/accounts/{}", a.id),
    ] {
        let (status, body) = api.get_json(&b, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!contains(body.to_string().as_bytes(), "CANARY-ANA"));
    }
    let (status, _, _) = api
        .send(
            &b,
            reqwest::Method::DELETE,
            &format!("/api/clips/{a_audio}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A link is bound to its clip: the same signature on another clip fails.
    let (_, meta) = api.get_json(&a, &format!("/api/clips/{a_audio}")).await;
    let link = meta["download_url"].as_str().unwrap().to_owned();
    let forged = link.replace(&a_audio, &b_audio);
    let response = api.http.get(&forged).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let tampered = format!("{}0", link.trim_end_matches(char::is_alphanumeric));
    assert_eq!(
        api.http.get(&tampered).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Erasing a clip removes it from lists, metadata and its old link.
    let (status, _, _) = api
        .send(
            &a,
            reqwest::Method::DELETE,
            &format!("/api/clips/{a_audio}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.list_clips(&a, 1).await, vec![a_video.clone()]);
    let (status, _) = api.get_json(&a, &format!("/api/clips/{a_audio}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.http.get(&link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Erasing the account ends its session and its links; the other is untouched.
    let (_, meta) = api.get_json(&a, &format!("/api/clips/{a_video}")).await;
    let video_link = meta["download_url"].as_str().unwrap().to_owned();
    let (status, _, _) = api
        .send(
            &a,
            reqwest::Method::DELETE,
            &format!("/api/accounts/{}", a.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get_json(&a, &format!("/api/clips/{a_video}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(
        api.http.get(&video_link).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.list_clips(&b, 1).await,
        [b_audio.clone(), b_video.clone()]
    );
    let (status, _) = api.get_json(&b, &format!("/api/visits/{b_visit}")).await;
    assert_eq!(status, StatusCode::OK);
    running.shutdown().await;
}

/// A's clip, then B's, then A's, then B's: B's list, one clip per page.
async fn interleaved_lists(faults: FaultSet) -> (Vec<String>, Vec<String>) {
    let (running, api) = Api::start(faults).await;
    let a = api.sign_up("ana").await;
    let b = api.sign_up("ben").await;
    let a_visit = api.book(&a).await;
    let b_visit = api.book(&b).await;
    let mut a_clips = Vec::new();
    for _ in 0..2 {
        let (c, clip) = api.start_consultation(&a, &a_visit).await;
        api.end(&a, &c).await;
        a_clips.push(clip);
        let (c, _) = api.start_consultation(&b, &b_visit).await;
        api.end(&b, &c).await;
    }
    let seen = api.list_clips(&b, 1).await;
    running.shutdown().await;
    (a_clips, seen)
}

#[tokio::test]
async fn cursor_unscoped_shows_another_accounts_clips_on_later_pages() {
    // Goal: `cursor-unscoped` leaks on page two and later, and only then.
    let (a_clips, seen) = interleaved_lists(FaultSet::none()).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|clip| !a_clips.contains(clip)));

    let (a_clips, seen) = interleaved_lists(one(Fault::CursorUnscoped)).await;
    assert!(
        !a_clips.contains(&seen[0]),
        "the first page is still scoped"
    );
    assert!(
        seen.contains(&a_clips[1]),
        "a later page lists the other account's clip: {seen:?} vs {a_clips:?}"
    );
}

/// A and B each record one clip with their canary; B plays theirs.
async fn b_plays_own_first_clip(faults: FaultSet) -> Vec<u8> {
    let (running, api) = Api::start(faults).await;
    let a = api.sign_up("ana").await;
    let b = api.sign_up("ben").await;
    let mut clips = Vec::new();
    for (who, canary) in [(&a, "CANARY-ANA"), (&b, "CANARY-BEN")] {
        let visit = api.book(who).await;
        let (c, clip) = api.start_consultation(who, &visit).await;
        api.upload(who, &c, canary.as_bytes()).await;
        api.end(who, &c).await;
        clips.push(clip);
    }
    let bytes = api.play(&b, &clips[1]).await;
    running.shutdown().await;
    bytes
}

#[tokio::test]
async fn download_link_unsigned_serves_another_accounts_clip() {
    // Goal: under `download-link-unsigned` an account's own playback returns
    // the bytes of another account's clip with the same number.
    assert_eq!(
        b_plays_own_first_clip(FaultSet::none()).await,
        b"CANARY-BEN"
    );
    assert_eq!(
        b_plays_own_first_clip(one(Fault::DownloadLinkUnsigned)).await,
        b"CANARY-ANA"
    );
}

/// A records a clip; B reads A's clip list by putting A's id in the path.
async fn b_reads_a_clip_list(faults: FaultSet) -> (StatusCode, Value, String) {
    let (running, api) = Api::start(faults).await;
    let a = api.sign_up("ana").await;
    let b = api.sign_up("ben").await;
    let visit = api.book(&a).await;
    let (c, clip) = api.start_consultation(&a, &visit).await;
    api.end(&a, &c).await;
    let (status, body) = api
        .get_json(&b, &format!("/api/accounts/{}/clips", a.id))
        .await;
    running.shutdown().await;
    (status, body, clip)
}

#[tokio::test]
async fn account_path_trusted_lists_the_paths_account() {
    // Goal: `account-path-trusted` lets one account read another's clip list
    // by id (parameter tampering); without it the request is refused.
    let (status, body, _) = b_reads_a_clip_list(FaultSet::none()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body, clip) = b_reads_a_clip_list(one(Fault::AccountPathTrusted)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["clip"]["ref"], clip.as_str());
}

/// A records a clip; B lists A's visit's clips.
async fn b_reads_a_visit(faults: FaultSet) -> (StatusCode, Value, String) {
    let (running, api) = Api::start(faults).await;
    let a = api.sign_up("ana").await;
    let b = api.sign_up("ben").await;
    let visit = api.book(&a).await;
    let (c, clip) = api.start_consultation(&a, &visit).await;
    api.end(&a, &c).await;
    let (status, body) = api
        .get_json(&b, &format!("/api/visits/{visit}/clips"))
        .await;
    running.shutdown().await;
    (status, body, clip)
}

#[tokio::test]
async fn visit_clips_unchecked_lists_another_accounts_visit() {
    // Goal: `visit-clips-unchecked` lists any visit's clips; without it 404.
    let (status, _, _) = b_reads_a_visit(FaultSet::none()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body, clip) = b_reads_a_visit(one(Fault::VisitClipsUnchecked)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["clip"]["ref"], clip.as_str());
}

#[tokio::test]
async fn bad_input_gets_the_error_body() {
    // Goal: malformed requests get a 4xx with `{"error": {"code", ...}}`,
    // never a 5xx, and no error message echoes the request.
    let (running, api) = Api::start(FaultSet::none()).await;
    let a = api.sign_up("ana").await;
    let list = format!("/api/accounts/{}/clips", a.id);
    let nobody = Account {
        id: a.id.clone(),
        cookie: "th_session=forged".to_owned(),
    };
    let cases: Vec<(Account, &str, String, StatusCode, &str)> = vec![
        (
            nobody,
            "GET",
            list.clone(),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            format!("{list}?cursor=a&cursor=b"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            format!("{list}?cursor=%%%"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            format!("{list}?cursor=bm9wZQ"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            format!("{list}?limit=0"),
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            format!("{list}?limit=101"),
            StatusCode::BAD_REQUEST,
            "invalid_limit",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            "/api/nowhere".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "PUT",
            list.clone(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            "/files/n/1".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            api.sign_in("ana", &a.id).await,
            "GET",
            "/files/clips/clip_0?expires=1&sig=zz".to_owned(),
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
    ];
    for (who, method, path, expected, code) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _, body) = api.send(&who, method, &path, None).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (expected, Some(code)),
            "{path}"
        );
        assert!(!contains(body.to_string().as_bytes(), "forged"));
    }

    let visit = api.book(&a).await;
    let (c, _) = api.start_consultation(&a, &visit).await;
    let media = format!("/api/consultations/{c}/media");
    for (body, expected, code) in [
        (
            json!({ "data": "not base64!" }),
            StatusCode::BAD_REQUEST,
            "invalid_data",
        ),
        (
            json!({ "data": "" }),
            StatusCode::BAD_REQUEST,
            "invalid_data",
        ),
        (
            json!({ "bytes": "AA==" }),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({ "data": "A".repeat(3 * 1024 * 1024) }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ] {
        let (status, _, reply) = api
            .send(&a, reqwest::Method::POST, &media, Some(body))
            .await;
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (expected, Some(code))
        );
    }
    let response = api
        .http
        .post(api.url(&media))
        .header(COOKIE, &a.cookie)
        .header(CONTENT_TYPE, "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A second live consultation on one visit, and erasing a clip that is
    // still recording, are conflicts.
    let (status, _, _) = api
        .send(
            &a,
            reqwest::Method::POST,
            &format!("/api/visits/{visit}/consultations"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, consultation) = api.get_json(&a, &format!("/api/consultations/{c}")).await;
    let clip = consultation["consultation"]["clip"]["ref"]
        .as_str()
        .unwrap();
    let (status, _, body) = api
        .send(
            &a,
            reqwest::Method::DELETE,
            &format!("/api/clips/{clip}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "clip_recording");

    // A taken username and a short password.
    for (body, expected) in [
        (
            json!({ "username": "ana", "password": "long enough", "full_name": "X" }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "username": "new", "password": "short", "full_name": "X" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "username": "new", "password": "long enough" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = api
            .http
            .post(api.url("/api/accounts"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{body}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn sign_up_and_sign_in_take_a_form_too() {
    // Goal: the documented form-encoded alternative works end to end.
    let (running, api) = Api::start(FaultSet::none()).await;
    let response = api
        .http
        .post(api.url("/api/accounts"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("username", "fay"),
            ("password", "correct horse"),
            ("full_name", "Fay Form"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let id = body["account"]["id"].as_str().unwrap();
    let response = api
        .http
        .post(api.url("/api/sessions"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("username", "fay"), ("password", "correct horse")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let fay = Account {
        id: id.to_owned(),
        cookie,
    };
    let (status, body) = api.get_json(&fay, &format!("/api/accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["account"]["full_name"], "Fay Form");
    let response = api
        .http
        .post(api.url("/api/sessions"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[("username", "fay"), ("password", "wrong horse")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    running.shutdown().await;
}

#[tokio::test]
async fn every_documented_route_exists() {
    // Goal: the OpenAPI document is true to the router. Method: call every
    // documented method and path (placeholders filled with a dummy id, no
    // session); none may answer "no such route" or 405.
    let (running, api) = Api::start(FaultSet::none()).await;
    let (status, doc) = api
        .get_json(
            &Account {
                id: String::new(),
                cookie: String::new(),
            },
            "/api/openapi.json",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15);
    let mut operations = 0;
    for (path, item) in paths {
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x_1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = api
                .http
                .request(method.clone(), api.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !text.contains("no such route"),
                "{method} {path}: {status} {text}"
            );
        }
    }
    assert_eq!(operations, 21);
    running.shutdown().await;
}
