//! Every fault, seen through `/fhir`: the two FHIR-only ones, and each of the
//! older faults, whose logic lives once in the shared layer.
//!
//! Like `faults.rs`, each test runs one scenario on a clean clinic and on a
//! clinic with only that fault, and asserts the clean run is correct and the
//! faulty one leaks in the documented way — here with FHIR requests only.

use clinic::Fault;
use reqwest::{Method, StatusCode};

use crate::fhir_support::{Fhir, media_ids, next_link};
use crate::support::{Harness, clean_clinic, clinic_with};

#[tokio::test]
async fn fhir_subject_unchecked_lists_whichever_patient_the_search_names() {
    // Goal: a Media search trusts its subject/patient parameter.
    // Method: Alice records; Bob searches with subject=Alice and patient=Alice.
    async fn scenario(h: &Harness) -> (Vec<StatusCode>, Vec<String>, String) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (_, _, alice_media) = f.book_and_start(&alice).await;
        let mut statuses = Vec::new();
        let mut seen = Vec::new();
        for param in ["subject=Patient/", "patient="] {
            let url = format!("/fhir/Media?{param}{}", alice.id);
            let reply = f.send(Method::GET, &url, Some(&bob.token), &[], None).await;
            statuses.push(reply.status());
            if reply.status() == StatusCode::OK {
                seen.extend(media_ids(&reply.json()));
            }
        }
        (statuses, seen, alice_media)
    }

    let clean = clean_clinic().await;
    let (statuses, seen, _) = scenario(&clean).await;
    assert_eq!(statuses, [StatusCode::FORBIDDEN, StatusCode::FORBIDDEN]);
    assert!(seen.is_empty());

    let faulty = clinic_with(&[Fault::FhirSubjectUnchecked]).await;
    let (statuses, seen, alice_media) = scenario(&faulty).await;
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK]);
    assert_eq!(seen, [alice_media.clone(), alice_media]);
}

#[tokio::test]
async fn fhir_next_link_unscoped_pages_into_everyones_media() {
    // Goal: the next link drops the owner, and following it lists every
    // patient's Media; the first page is still right.
    // Method: Alice and Bob record two each, interleaved; Alice pages through
    // her own Media with _count=1, following next links.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, Vec<String>, String) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let mut mine = Vec::new();
        let mut bobs = Vec::new();
        for _ in 0..2 {
            mine.push(f.book_and_start(&alice).await.2);
            bobs.push(f.book_and_start(&bob).await.2);
        }
        let first = f
            .search(
                &alice,
                &format!("/fhir/Media?subject=Patient/{}&_count=1", alice.id),
            )
            .await;
        let next = next_link(&first).expect("a next link");
        let (seen, _) = f
            .follow(
                &alice,
                &format!("/fhir/Media?subject=Patient/{}&_count=1", alice.id),
            )
            .await;
        (mine, bobs, seen, next)
    }

    let clean = clean_clinic().await;
    let (mine, _, seen, next) = scenario(&clean).await;
    assert_eq!(seen, mine);
    assert!(next.contains("subject=Patient/"), "{next}");

    let faulty = clinic_with(&[Fault::FhirNextLinkUnscoped]).await;
    let (mine, bobs, seen, next) = scenario(&faulty).await;
    assert!(!next.contains("subject"), "{next}");
    assert!(next.contains("_cursor=1"), "{next}");
    assert_eq!(seen[0], mine[0], "the first page is still hers");
    assert!(
        seen.contains(&bobs[0]) || seen.contains(&bobs[1]),
        "{seen:?}"
    );
}

#[tokio::test]
async fn upgrade_latest_call_shows_through_fhir() {
    // Goal: the 2020 incident through FHIR: Alice's upgrade puts her video on
    // Bob's call, and Bob's search and download show it.
    async fn scenario(
        h: &Harness,
    ) -> (
        String,
        Vec<String>,
        Vec<String>,
        Result<Vec<u8>, StatusCode>,
    ) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (_, alice_enc, _) = f.book_and_start(&alice).await;
        let (_, bob_enc, _) = f.book_and_start(&bob).await;
        let video = f.upgrade(&alice, &alice_enc).await;
        f.send_media(&alice, &alice_enc, b"alice-canary").await;
        f.end(&alice, &alice_enc).await;
        f.end(&bob, &bob_enc).await;
        let bob_sees = f.all_media(&bob, 10).await.0;
        let alice_sees = f.all_media(&alice, 10).await.0;
        let bob_plays = f.play_bytes(&bob, &video).await;
        (video, alice_sees, bob_sees, bob_plays)
    }

    let clean = clean_clinic().await;
    let (video, alice_sees, bob_sees, bob_plays) = scenario(&clean).await;
    assert!(alice_sees.contains(&video));
    assert!(!bob_sees.contains(&video));
    assert_eq!(bob_plays, Err(StatusCode::NOT_FOUND));

    let faulty = clinic_with(&[Fault::UpgradeLatestCall]).await;
    let (video, alice_sees, bob_sees, bob_plays) = scenario(&faulty).await;
    assert!(!alice_sees.contains(&video));
    assert!(bob_sees.contains(&video));
    assert_eq!(bob_plays, Ok(b"alice-canary".to_vec()));
}

#[tokio::test]
async fn upgrade_phantom_shows_through_fhir() {
    // Goal: a FHIR search counts as viewing history: Alice's upgrade plants
    // an empty finished video Media on Bob, who searched last.
    async fn scenario(h: &Harness) -> serde_json::Value {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        f.book(&bob).await;
        assert!(f.all_media(&bob, 10).await.0.is_empty());
        let (_, enc, _) = f.book_and_start(&alice).await;
        f.upgrade(&alice, &enc).await;
        f.search(&bob, "/fhir/Media").await
    }

    let clean = clean_clinic().await;
    assert_eq!(scenario(&clean).await["total"], 0);

    let faulty = clinic_with(&[Fault::UpgradePhantom]).await;
    let bundle = scenario(&faulty).await;
    assert_eq!(bundle["total"], 1);
    let phantom = &bundle["entry"][0]["resource"];
    assert_eq!(phantom["type"]["coding"][0]["code"], "video");
    assert_eq!(phantom["status"], "completed");
    assert_eq!(phantom["content"]["size"], 0);
}

#[tokio::test]
async fn history_page2_unfiltered_shows_through_fhir_continuations() {
    // Goal: pages after the first drop the owner filter for a FHIR search too.
    // Method: Alice records, Bob records, Alice records again; Alice pages
    // with _count=1 by next links: her page 2 is everyone's second row.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, String) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let first = f.book_and_start(&alice).await.2;
        let bob_media = f.book_and_start(&bob).await.2;
        let second = f.book_and_start(&alice).await.2;
        let (seen, _) = f.all_media(&alice, 1).await;
        (vec![first, second], seen, bob_media)
    }

    let clean = clean_clinic().await;
    let (mine, seen, _) = scenario(&clean).await;
    assert_eq!(seen, mine);

    let faulty = clinic_with(&[Fault::HistoryPage2Unfiltered]).await;
    let (mine, seen, bob_media) = scenario(&faulty).await;
    assert_eq!(seen, [mine[0].clone(), bob_media]);
}

#[tokio::test]
async fn history_cache_shared_shows_through_fhir() {
    // Goal: the listing cache has no patient in its key for FHIR searches
    // too, and a FHIR write empties it.
    async fn scenario(h: &Harness) -> (Vec<String>, Vec<String>, Vec<String>) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        f.book_and_start(&alice).await;
        let alice_sees = media_ids(&f.search(&alice, "/fhir/Media").await);
        let bob_sees = media_ids(&f.search(&bob, "/fhir/Media").await);
        f.book(&bob).await;
        let bob_after = media_ids(&f.search(&bob, "/fhir/Media").await);
        (alice_sees, bob_sees, bob_after)
    }

    let clean = clean_clinic().await;
    let (alice_sees, bob_sees, _) = scenario(&clean).await;
    assert_eq!(alice_sees.len(), 1);
    assert!(bob_sees.is_empty());

    let faulty = clinic_with(&[Fault::HistoryCacheShared]).await;
    let (alice_sees, bob_sees, bob_after) = scenario(&faulty).await;
    assert_eq!(bob_sees, alice_sees);
    assert!(bob_after.is_empty());
}

#[tokio::test]
async fn recording_idor_shows_through_fhir_media_and_binary_reads() {
    // Goal: reading another's Media and its Binary skips the ownership check.
    async fn scenario(h: &Harness) -> Result<Vec<u8>, StatusCode> {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (_, enc, media) = f.book_and_start(&alice).await;
        f.send_media(&alice, &enc, b"alice-canary").await;
        f.play_bytes(&bob, &media).await
    }

    let clean = clean_clinic().await;
    assert_eq!(scenario(&clean).await, Err(StatusCode::NOT_FOUND));
    let faulty = clinic_with(&[Fault::RecordingIdor]).await;
    assert_eq!(scenario(&faulty).await, Ok(b"alice-canary".to_vec()));
}

#[tokio::test]
async fn rebook_reuses_consultation_shows_through_fhir() {
    // Goal: Alice cancels (a FHIR PATCH); Bob's next booking inherits her
    // recordings, in his search and his download.
    async fn scenario(
        h: &Harness,
    ) -> (
        Vec<String>,
        Vec<String>,
        String,
        Result<Vec<u8>, StatusCode>,
    ) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (apt, enc, media) = f.book_and_start(&alice).await;
        f.send_media(&alice, &enc, b"alice-canary").await;
        f.end(&alice, &enc).await;
        assert_eq!(f.cancel(&alice, &apt).await.status(), StatusCode::OK);
        f.book(&bob).await;
        let alice_sees = f.all_media(&alice, 10).await.0;
        let bob_sees = f.all_media(&bob, 10).await.0;
        let bob_plays = f.play_bytes(&bob, &media).await;
        (alice_sees, bob_sees, media, bob_plays)
    }

    let clean = clean_clinic().await;
    let (alice_sees, bob_sees, media, bob_plays) = scenario(&clean).await;
    assert_eq!(alice_sees, [media]);
    assert!(bob_sees.is_empty());
    assert_eq!(bob_plays, Err(StatusCode::NOT_FOUND));

    let faulty = clinic_with(&[Fault::RebookReusesConsultation]).await;
    let (alice_sees, bob_sees, media, bob_plays) = scenario(&faulty).await;
    assert!(alice_sees.is_empty());
    assert_eq!(bob_sees, [media]);
    assert_eq!(bob_plays, Ok(b"alice-canary".to_vec()));
}

#[tokio::test]
async fn erasure_leaves_media_shows_through_fhir() {
    // Goal: after DELETE Media, the search hides it but its Media and Binary
    // still read; still not for another patient.
    async fn scenario(
        h: &Harness,
    ) -> (
        Vec<String>,
        Result<Vec<u8>, StatusCode>,
        Result<Vec<u8>, StatusCode>,
    ) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (_, enc, media) = f.book_and_start(&alice).await;
        f.send_media(&alice, &enc, b"alice-canary").await;
        f.end(&alice, &enc).await;
        assert_eq!(
            f.erase(&alice, &media).await.status(),
            StatusCode::NO_CONTENT
        );
        let listed = f.all_media(&alice, 10).await.0;
        (
            listed,
            f.play_bytes(&alice, &media).await,
            f.play_bytes(&bob, &media).await,
        )
    }

    let clean = clean_clinic().await;
    let (listed, alice, bob) = scenario(&clean).await;
    assert!(listed.is_empty());
    assert_eq!(
        (alice, bob),
        (Err(StatusCode::NOT_FOUND), Err(StatusCode::NOT_FOUND))
    );

    let faulty = clinic_with(&[Fault::ErasureLeavesMedia]).await;
    let (listed, alice, bob) = scenario(&faulty).await;
    assert!(listed.is_empty());
    assert_eq!(alice, Ok(b"alice-canary".to_vec()));
    assert_eq!(bob, Err(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn media_misroute_shows_through_fhir_binary_uploads() {
    // Goal: the first Binary uploaded after $upgrade lands in the previously
    // created recording, Bob's.
    async fn scenario(h: &Harness) -> (Result<Vec<u8>, StatusCode>, Result<Vec<u8>, StatusCode>) {
        let f = Fhir { h };
        let alice = f.register("alice").await;
        let bob = f.register("bob").await;
        let (_, alice_enc, _) = f.book_and_start(&alice).await;
        let (_, _, bob_audio) = f.book_and_start(&bob).await;
        let video = f.upgrade(&alice, &alice_enc).await;
        f.send_media(&alice, &alice_enc, b"alice-1").await;
        f.send_media(&alice, &alice_enc, b"alice-2").await;
        (
            f.play_bytes(&bob, &bob_audio).await,
            f.play_bytes(&alice, &video).await,
        )
    }

    let clean = clean_clinic().await;
    let (bob_hears, alice_sees) = scenario(&clean).await;
    assert_eq!(bob_hears, Ok(Vec::new()));
    assert_eq!(alice_sees, Ok(b"alice-1alice-2".to_vec()));

    let faulty = clinic_with(&[Fault::MediaMisroute]).await;
    let (bob_hears, alice_sees) = scenario(&faulty).await;
    assert_eq!(bob_hears, Ok(b"alice-1".to_vec()));
    assert_eq!(alice_sees, Ok(b"alice-2".to_vec()));
}

#[tokio::test]
async fn upgrade_shared_slot_shows_through_concurrent_fhir_upgrades() {
    // Goal: eight $upgrade operations sent together misattach some video,
    // while the clean clinic never does. Bounded repeats: scheduling decides.
    async fn round(h: &Harness, concurrent: bool) -> usize {
        let f = Fhir { h };
        let mut patients = Vec::new();
        for i in 0..8 {
            let p = f.register(&format!("p{i}")).await;
            let (_, enc, _) = f.book_and_start(&p).await;
            patients.push((p, enc));
        }
        let videos: Vec<String> = if concurrent {
            let upgrades = patients.iter().map(|(p, enc)| f.upgrade(p, enc));
            futures::future::join_all(upgrades).await
        } else {
            let mut videos = Vec::new();
            for (p, enc) in &patients {
                videos.push(f.upgrade(p, enc).await);
            }
            videos
        };
        let mut misattached = 0;
        for ((p, _), video) in patients.iter().zip(&videos) {
            if !f.all_media(p, 100).await.0.contains(video) {
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
