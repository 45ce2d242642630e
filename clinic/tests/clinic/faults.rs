//! One test per fault, each showing the raw misbehaviour.
//!
//! Every test runs one scenario twice, on a clean clinic and on a clinic with
//! only that fault planted, and asserts that the clean run is correct and the
//! faulty run leaks in exactly the documented way.

use clinic::Fault;
use reqwest::StatusCode;

use crate::support::{Harness, clean_clinic, clinic_with, ids_of};

#[tokio::test]
async fn upgrade_latest_call_attaches_video_to_the_latest_active_call() {
    // Goal: the upgraded video recording lands on whichever call started last,
    // and the upgrader's later media goes into it.
    // Method: Alice calls, then Bob calls; Alice upgrades and sends a canary;
    // Bob lists his history and plays what he finds.
    async fn scenario(h: &Harness) -> (String, Vec<String>, Vec<String>, Vec<u8>) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let (_, alice_call, _) = h.book_and_call(&alice).await;
        let (_, bob_call, _) = h.book_and_call(&bob).await;
        let video = h.upgrade(&alice, &alice_call).await;
        h.send_media(&alice, &alice_call, b"alice-canary").await;
        h.end(&alice, &alice_call).await;
        h.end(&bob, &bob_call).await;
        let bob_sees = h.history_ids(&bob, 1, 10).await;
        let alice_sees = h.history_ids(&alice, 1, 10).await;
        let bob_plays = h.play(&bob, &video).await.body;
        (video, alice_sees, bob_sees, bob_plays)
    }

    let clean = clean_clinic().await;
    let (video, alice_sees, bob_sees, _) = scenario(&clean).await;
    assert!(alice_sees.contains(&video));
    assert!(!bob_sees.contains(&video));

    let faulty = clinic_with(&[Fault::UpgradeLatestCall]).await;
    let (video, alice_sees, bob_sees, bob_plays) = scenario(&faulty).await;
    assert!(!alice_sees.contains(&video));
    assert!(bob_sees.contains(&video));
    assert_eq!(bob_plays, b"alice-canary");
}

#[tokio::test]
async fn upgrade_phantom_plants_an_empty_recording_on_the_last_history_viewer() {
    // Goal: an upgrade creates a stray empty finished video recording on the
    // most recent consultation of whoever last viewed history, and nothing
    // extra when that patient has no consultation.
    // Method: Bob books and views his (empty) history; Alice upgrades. Then
    // Carol, with no booking, views history and Alice upgrades again.
    async fn scenario(h: &Harness) -> (serde_json::Value, u64) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let carol = h.register("carol").await;
        h.book(&bob).await;
        assert_eq!(h.history(&bob, 1, 10).await["total"], 0);
        let (_, call, _) = h.book_and_call(&alice).await;
        h.upgrade(&alice, &call).await;
        let bob_page = h.history(&bob, 1, 10).await;
        assert_eq!(h.history(&carol, 1, 10).await["total"], 0);
        let (_, call, _) = h.book_and_call(&alice).await;
        h.upgrade(&alice, &call).await;
        let carol_total = h.history(&carol, 1, 10).await["total"]
            .as_u64()
            .expect("total");
        (bob_page, carol_total)
    }

    let clean = clean_clinic().await;
    let (bob_page, carol_total) = scenario(&clean).await;
    assert_eq!(bob_page["total"], 0);
    assert_eq!(carol_total, 0);

    let faulty = clinic_with(&[Fault::UpgradePhantom]).await;
    let (bob_page, carol_total) = scenario(&faulty).await;
    assert_eq!(bob_page["total"], 1);
    let phantom = &bob_page["items"][0];
    assert_eq!(phantom["kind"], "video");
    assert_eq!(phantom["status"], "finished");
    assert_eq!(phantom["bytes"], 0);
    assert_eq!(carol_total, 0);
}

#[tokio::test]
async fn history_page2_unfiltered_lists_other_patients_from_page_two() {
    // Goal: pages after the first drop the owner filter (erased rows still hidden).
    // Method: Alice has one recording, Bob two; Alice reads page 2 of size 1.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, serde_json::Value) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        h.book_and_call(&alice).await;
        let (_, _, bob_first) = h.book_and_call(&bob).await;
        let (_, _, bob_second) = h.book_and_call(&bob).await;
        let page2 = h.history(&alice, 2, 1).await;
        (vec![bob_first, bob_second], ids_of(&page2), page2)
    }

    let clean = clean_clinic().await;
    let (_, seen, page2) = scenario(&clean).await;
    assert!(seen.is_empty());
    assert_eq!(page2["total"], 1);

    let faulty = clinic_with(&[Fault::HistoryPage2Unfiltered]).await;
    let (bobs, seen, page2) = scenario(&faulty).await;
    assert_eq!(seen, [bobs[0].clone()]);
    assert_eq!(page2["total"], 1, "the total stays the caller's own");
}

#[tokio::test]
async fn history_cache_shared_serves_one_patients_page_to_another() {
    // Goal: history is cached by (page, per_page) only, until any POST or
    // DELETE under /v1 empties the cache.
    // Method: Alice lists her page; Bob lists the same page; Bob books (a
    // mutation) and lists again.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, Vec<String>) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        h.book_and_call(&alice).await;
        let alice_sees = h.history_ids(&alice, 1, 10).await;
        let bob_sees = h.history_ids(&bob, 1, 10).await;
        h.book(&bob).await;
        let bob_after_mutation = h.history_ids(&bob, 1, 10).await;
        (alice_sees, bob_sees, bob_after_mutation)
    }

    let clean = clean_clinic().await;
    let (alice_sees, bob_sees, _) = scenario(&clean).await;
    assert_eq!(alice_sees.len(), 1);
    assert!(bob_sees.is_empty());

    let faulty = clinic_with(&[Fault::HistoryCacheShared]).await;
    let (alice_sees, bob_sees, bob_after_mutation) = scenario(&faulty).await;
    assert_eq!(bob_sees, alice_sees);
    assert!(bob_after_mutation.is_empty());
}

#[tokio::test]
async fn recording_idor_plays_another_patients_recording_by_id() {
    // Goal: playback skips the ownership check, but unknown and erased ids
    // still answer 404.
    // Method: Bob plays Alice's live recording, her erased one, and a made-up id.
    async fn scenario(h: &Harness) -> (StatusCode, Vec<u8>, StatusCode, StatusCode) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let (_, call, erased) = h.book_and_call(&alice).await;
        h.end(&alice, &call).await;
        assert_eq!(
            h.erase(&alice, &erased).await.status,
            StatusCode::NO_CONTENT
        );
        let (_, call, live) = h.book_and_call(&alice).await;
        h.send_media(&alice, &call, b"alice-canary").await;
        let played = h.play(&bob, &live).await;
        let erased_status = h.play(&bob, &erased).await.status;
        let unknown_status = h.play(&bob, "rec_0123456789abcdef").await.status;
        (played.status, played.body, erased_status, unknown_status)
    }

    let clean = clean_clinic().await;
    let (status, _, erased, unknown) = scenario(&clean).await;
    assert_eq!(
        (status, erased, unknown),
        (
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND,
            StatusCode::NOT_FOUND
        )
    );

    let faulty = clinic_with(&[Fault::RecordingIdor]).await;
    let (status, body, erased, unknown) = scenario(&faulty).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"alice-canary");
    assert_eq!(
        (erased, unknown),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn rebook_reuses_consultation_hands_recordings_to_the_next_booker() {
    // Goal: a cancelled appointment's consultation is re-pointed to the next
    // booking, so its recordings now belong to the new booker.
    // Method: Alice records, ends and cancels; Bob books; both list and play.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, String, Vec<u8>) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let (appointment, call, recording) = h.book_and_call(&alice).await;
        h.send_media(&alice, &call, b"alice-canary").await;
        h.end(&alice, &call).await;
        assert_eq!(
            h.cancel(&alice, &appointment).await.status,
            StatusCode::NO_CONTENT
        );
        h.book(&bob).await;
        let alice_sees = h.history_ids(&alice, 1, 10).await;
        let bob_sees = h.history_ids(&bob, 1, 10).await;
        let bob_plays = h.play(&bob, &recording).await.body;
        (alice_sees, bob_sees, recording, bob_plays)
    }

    let clean = clean_clinic().await;
    let (alice_sees, bob_sees, recording, _) = scenario(&clean).await;
    assert_eq!(alice_sees, [recording]);
    assert!(bob_sees.is_empty());

    let faulty = clinic_with(&[Fault::RebookReusesConsultation]).await;
    let (alice_sees, bob_sees, recording, bob_plays) = scenario(&faulty).await;
    assert!(alice_sees.is_empty());
    assert_eq!(bob_sees, [recording]);
    assert_eq!(bob_plays, b"alice-canary");
}

#[tokio::test]
async fn erasure_leaves_media_keeps_erased_recordings_playable_by_their_owner() {
    // Goal: erasure hides the recording from history, but playback by id still
    // returns its bytes; the ownership check still holds.
    // Method: Alice records, erases, lists and plays back; Bob plays it too.
    async fn scenario(h: &Harness) -> (Vec<String>, StatusCode, Vec<u8>, StatusCode) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let (_, call, recording) = h.book_and_call(&alice).await;
        h.send_media(&alice, &call, b"alice-canary").await;
        h.end(&alice, &call).await;
        assert_eq!(
            h.erase(&alice, &recording).await.status,
            StatusCode::NO_CONTENT
        );
        let listed = h.history_ids(&alice, 1, 10).await;
        let played = h.play(&alice, &recording).await;
        let bob_status = h.play(&bob, &recording).await.status;
        (listed, played.status, played.body, bob_status)
    }

    let clean = clean_clinic().await;
    let (listed, status, _, bob) = scenario(&clean).await;
    assert!(listed.is_empty());
    assert_eq!(
        (status, bob),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );

    let faulty = clinic_with(&[Fault::ErasureLeavesMedia]).await;
    let (listed, status, body, bob) = scenario(&faulty).await;
    assert!(listed.is_empty());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"alice-canary");
    assert_eq!(bob, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn media_misroute_sends_the_first_chunk_after_upgrade_to_the_previous_recording() {
    // Goal: the first chunk after an upgrade is appended to the recording
    // created just before the call's video recording, whoever owns it; later
    // chunks go to the right place.
    // Method: Alice calls, Bob calls (his audio is the previous row), Alice
    // upgrades and sends two canaries; both play back what they own.
    async fn scenario(h: &Harness) -> (Vec<u8>, Vec<u8>, serde_json::Value) {
        let alice = h.register("alice").await;
        let bob = h.register("bob").await;
        let (_, alice_call, _) = h.book_and_call(&alice).await;
        let (_, _, bob_audio) = h.book_and_call(&bob).await;
        let video = h.upgrade(&alice, &alice_call).await;
        h.send_media(&alice, &alice_call, b"alice-1").await;
        h.send_media(&alice, &alice_call, b"alice-2").await;
        let bob_hears = h.play(&bob, &bob_audio).await.body;
        let alice_sees = h.play(&alice, &video).await.body;
        let bob_page = h.history(&bob, 1, 10).await;
        (bob_hears, alice_sees, bob_page)
    }

    let clean = clean_clinic().await;
    let (bob_hears, alice_sees, _) = scenario(&clean).await;
    assert!(bob_hears.is_empty());
    assert_eq!(alice_sees, b"alice-1alice-2");

    let faulty = clinic_with(&[Fault::MediaMisroute]).await;
    let (bob_hears, alice_sees, bob_page) = scenario(&faulty).await;
    assert_eq!(bob_hears, b"alice-1");
    assert_eq!(alice_sees, b"alice-2");
    assert_eq!(bob_page["items"][0]["bytes"], 7);
}

#[tokio::test]
async fn upgrade_shared_slot_misattaches_only_under_concurrent_upgrades() {
    // Goal: with the shared slot, upgrades done one after another stay correct
    // (which is why sequential exploration cannot see this fault), while
    // upgrades sent together attach some patient's video to another's call.
    // Method: eight patients each in an audio call. First sequentially, then
    // (on fresh calls) all eight upgrades at once; count video recordings that
    // do not appear in their upgrader's own history. Repeat the concurrent
    // round until it misattaches (bounded), since scheduling decides the race.
    async fn round(h: &Harness, concurrent: bool) -> usize {
        let mut patients = Vec::new();
        for i in 0..8 {
            let p = h.register(&format!("p{i}")).await;
            let (_, call, _) = h.book_and_call(&p).await;
            patients.push((p, call));
        }
        let videos: Vec<String> = if concurrent {
            let upgrades = patients.iter().map(|(p, call)| h.upgrade(p, call));
            futures::future::join_all(upgrades).await
        } else {
            let mut videos = Vec::new();
            for (p, call) in &patients {
                videos.push(h.upgrade(p, call).await);
            }
            videos
        };
        let mut misattached = 0;
        for ((p, _), video) in patients.iter().zip(&videos) {
            if !h.history_ids(p, 1, 100).await.contains(video) {
                misattached += 1;
            }
        }
        misattached
    }

    let faulty = clinic_with(&[Fault::UpgradeSharedSlot]).await;
    assert_eq!(
        round(&faulty, false).await,
        0,
        "sequential upgrades stay correct"
    );
    let clean = clean_clinic().await;
    let mut seen = 0;
    for _ in 0..20 {
        assert_eq!(
            round(&clean, true).await,
            0,
            "the clean clinic never misattaches"
        );
        seen = round(&faulty, true).await;
        if seen > 0 {
            break;
        }
    }
    assert!(
        seen > 0,
        "20 rounds of 8 concurrent upgrades never misattached"
    );
}

#[tokio::test]
async fn erase_keeps_stored_media_leaves_the_bytes_in_the_media_store() {
    // Goal: erasure hides the recording and refuses its playback, but the
    // bytes stay in the media store. Method: Alice records and erases; the
    // media service's listing (`GET /media`) and objects are read directly.
    async fn scenario(h: &Harness) -> (StatusCode, bool) {
        let alice = h.register("alice").await;
        let (_, call, recording) = h.book_and_call(&alice).await;
        h.send_media(&alice, &call, b"alice-canary-in-store").await;
        h.end(&alice, &call).await;
        h.erase(&alice, &recording).await;
        let played = h.play(&alice, &recording).await.status;
        let media = h.clinic.media_url();
        // Bytes, then JSON: the clinic's reqwest has no `json` feature (the
        // workspace's does, which hid this from workspace-wide builds).
        let listing = h
            .http
            .get(format!("{media}/media"))
            .send()
            .await
            .expect("list")
            .bytes()
            .await
            .expect("listing");
        let listing: serde_json::Value = serde_json::from_slice(&listing).expect("json");
        let mut stored = false;
        for id in listing["ids"].as_array().expect("ids") {
            let bytes = h
                .http
                .get(format!("{media}/media/{}", id.as_str().expect("string")))
                .send()
                .await
                .expect("object")
                .bytes()
                .await
                .expect("bytes");
            stored |= bytes
                .windows(b"alice-canary-in-store".len())
                .any(|w| w == b"alice-canary-in-store");
        }
        (played, stored)
    }

    let clean = clean_clinic().await;
    assert_eq!(scenario(&clean).await, (StatusCode::NOT_FOUND, false));
    let faulty = clinic_with(&[Fault::EraseKeepsStoredMedia]).await;
    assert_eq!(scenario(&faulty).await, (StatusCode::NOT_FOUND, true));
}
