//! Every client mistake on the WHIP/WHEP endpoints gets its 4xx (never a 500): 415, 400, 404,
//! 409, 412, 428, 413.

use anyhow::ensure;
use gatehouse_e2e::whip_http::{SDPFRAG, patch, run, session};
use gatehouse_e2e::{http, ice_credentials, offers, post_sdp, sdpfrag, start_gateway};

// ---------------------------------------------------------------------------------------------
// client mistakes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_with_wrong_content_type_is_415() {
    run("post_with_wrong_content_type_is_415", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for (path, offer) in [
            ("/v1/whip/a", &o.whip[0]),
            ("/v1/whep/a", &o.whep[0]),
            ("/whip/b", &o.whip[1]),
            ("/whep/b", &o.whep[1]),
        ] {
            let r = http()
                .post(format!("{base}{path}"))
                .header("Content-Type", "text/plain")
                .body(offer.clone())
                .send()
                .await?;
            ensure!(
                r.status().as_u16() == 415,
                "POST {path} text/plain -> {}",
                r.status()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_with_wrong_content_type_is_415() {
    run("patch_with_wrong_content_type_is_415", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let offer = &o.whep[0];
        let (url, etag, _) = session(&base, "/v1/whep/p", offer).await?;
        let (u, p) = ice_credentials(offer);
        let frag = sdpfrag(offer, &u.unwrap_or_default(), &p.unwrap_or_default(), true);
        let r = patch(&url, "application/sdp", Some(&etag), frag.clone()).await?;
        ensure!(
            r.status().as_u16() == 415,
            "PATCH application/sdp -> {}",
            r.status()
        );
        let r = patch(&url, "text/plain", Some(&etag), frag).await?;
        ensure!(
            r.status().as_u16() == 415,
            "PATCH text/plain -> {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_sdp_is_400() {
    run("unparsable_sdp_is_400", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for path in ["/v1/whip/g", "/v1/whep/g", "/whip/h", "/whep/h"] {
            let r = post_sdp(&format!("{base}{path}"), "hello").await?;
            ensure!(
                r.status().as_u16() == 400,
                "POST {path} body \"hello\" -> {}",
                r.status()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_without_audio_or_video_is_400() {
    run("offer_without_audio_or_video_is_400", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        for path in ["/v1/whip/dc", "/v1/whep/dc2"] {
            let r = post_sdp(&format!("{base}{path}"), &o.datachannel[0]).await?;
            ensure!(
                r.status().as_u16() == 400,
                "POST {path} data-channel-only offer -> {}",
                r.status()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recvonly_whip_offer_is_400() {
    run("recvonly_whip_offer_is_400", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let r = post_sdp(&format!("{base}/v1/whip/ro"), &o.whep[0]).await?;
        ensure!(
            r.status().as_u16() == 400,
            "WHIP POST of a recvonly offer -> {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_and_delete_of_unknown_session_are_404() {
    run("patch_and_delete_of_unknown_session_are_404", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        // a stream that exists (one real session) and one that does not
        session(&base, "/v1/whep/known", &o.whep[0]).await?;
        let (u, p) = ice_credentials(&o.whep[0]);
        let frag = sdpfrag(
            &o.whep[0],
            &u.unwrap_or_default(),
            &p.unwrap_or_default(),
            true,
        );
        for url in [
            format!("{base}/v1/session/known/00000000000000000000000000000000"),
            format!("{base}/v1/session/nosuchstream/00000000000000000000000000000000"),
        ] {
            let r = patch(&url, SDPFRAG, Some("\"*\""), frag.clone()).await?;
            ensure!(r.status().as_u16() == 404, "PATCH {url} -> {}", r.status());
            let r = patch(&url, SDPFRAG, Some("\"x\""), frag.clone()).await?;
            ensure!(
                r.status().as_u16() == 404,
                "trickle PATCH {url} -> {}",
                r.status()
            );
            let r = http().delete(&url).send().await?;
            ensure!(r.status().as_u16() == 404, "DELETE {url} -> {}", r.status());
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_on_unknown_stream_is_404_when_auto_create_whep_is_off() {
    run(
        "whep_on_unknown_stream_is_404_when_auto_create_whep_is_off",
        async {
            let o = offers().await?;
            let gw = start_gateway(|c| c.strategy.auto_create_whep = false).await?;
            let base = gw.base_url();
            for path in ["/v1/whep/none", "/whep/none"] {
                let r = post_sdp(&format!("{base}{path}"), &o.whep[0]).await?;
                ensure!(
                    r.status().as_u16() == 404,
                    "WHEP POST {path} -> {}",
                    r.status()
                );
            }
            // once a publisher created the stream, WHEP works
            session(&base, "/v1/whip/none", &o.whip[0]).await?;
            session(&base, "/v1/whep/none", &o.whep[1]).await?;
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_on_unknown_stream_is_404_when_auto_create_whip_is_off() {
    run(
        "whip_on_unknown_stream_is_404_when_auto_create_whip_is_off",
        async {
            let o = offers().await?;
            let gw = start_gateway(|c| c.strategy.auto_create_whip = false).await?;
            let base = gw.base_url();
            for path in ["/v1/whip/none", "/whip/none"] {
                let r = post_sdp(&format!("{base}{path}"), &o.whip[0]).await?;
                ensure!(
                    r.status().as_u16() == 404,
                    "WHIP POST {path} -> {}",
                    r.status()
                );
            }
            gw.shutdown().await;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_whip_publisher_on_a_stream_is_409() {
    run("second_whip_publisher_on_a_stream_is_409", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        session(&base, "/v1/whip/busy", &o.whip[0]).await?;
        for path in ["/v1/whip/busy", "/whip/busy"] {
            let r = post_sdp(&format!("{base}{path}"), &o.whip[1]).await?;
            ensure!(
                r.status().as_u16() == 409,
                "second WHIP POST {path} -> {}",
                r.status()
            );
        }
        let snap = gw.room("busy").await;
        ensure!(
            snap.as_ref().is_some_and(|r| r.publishers == 1),
            "room busy: {snap:?}"
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_patch_with_stale_etag_is_412() {
    run("trickle_patch_with_stale_etag_is_412", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let offer = &o.whep[0];
        let (url, etag, _) = session(&base, "/v1/whep/e", offer).await?;
        let (u, p) = ice_credentials(offer);
        let frag = sdpfrag(offer, &u.unwrap_or_default(), &p.unwrap_or_default(), true);
        let wrong = "\"not-the-current-tag\"";
        ensure!(wrong != etag, "test tag collides with the server's");
        let r = patch(&url, SDPFRAG, Some(wrong), frag).await?;
        ensure!(
            r.status().as_u16() == 412,
            "PATCH with If-Match {wrong} (current {etag}) -> {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_patch_without_if_match_is_428() {
    run("trickle_patch_without_if_match_is_428", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let offer = &o.whep[0];
        let (url, _, _) = session(&base, "/v1/whep/n", offer).await?;
        let (u, p) = ice_credentials(offer);
        let frag = sdpfrag(offer, &u.unwrap_or_default(), &p.unwrap_or_default(), true);
        let r = patch(&url, SDPFRAG, None, frag).await?;
        ensure!(
            r.status().as_u16() == 428,
            "PATCH without If-Match -> {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_one_mib_is_413() {
    run("body_over_one_mib_is_413", async {
        let o = offers().await?;
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        // a real offer padded with attribute lines past 1 MiB
        let mut big = o.whip[0].clone();
        let pad = format!("a=x-pad:{}\r\n", "p".repeat(1000));
        while big.len() <= 1024 * 1024 {
            big.push_str(&pad);
        }
        for path in ["/v1/whip/big", "/whep/big"] {
            let r = post_sdp(&format!("{base}{path}"), &big).await?;
            ensure!(
                r.status().as_u16() == 413,
                "POST {path} with {} bytes -> {}",
                big.len(),
                r.status()
            );
        }
        gw.shutdown().await;
        Ok(())
    })
    .await;
}

/// A deterministic generator (64-bit LCG) so every run posts the same mutations.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// One mutation of an SDP text: a line dropped, duplicated or garbled, a truncation, a number
/// changed, or a junk attribute inserted.
fn mutate(sdp: &str, rng: &mut Lcg) -> String {
    let mut lines: Vec<String> = sdp.lines().map(str::to_owned).collect();
    let i = rng.next(lines.len());
    match rng.next(6) {
        0 => {
            lines.remove(i);
        }
        1 => lines.insert(i, lines[i].clone()),
        2 => {
            let cut = rng.next(lines[i].len());
            lines[i].truncate(cut);
        }
        3 => {
            let digits: String = lines[i]
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        char::from(b'0' + rng.next(10) as u8)
                    } else {
                        c
                    }
                })
                .collect();
            lines[i] = digits;
        }
        4 => lines.insert(i, format!("a=x-junk:{}", "\u{1F600}".repeat(rng.next(4)))),
        _ => {
            let cut = rng.next(sdp.len());
            return sdp.chars().take(cut).collect();
        }
    }
    lines.join("\r\n") + "\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_offers_never_get_a_server_error() {
    run("mutated_offers", async {
        let gw = start_gateway(|_| {}).await?;
        let base = gw.base_url();
        let offers = offers().await?;
        let mut rng = Lcg(0x5EED);
        let mut statuses = std::collections::BTreeMap::new();
        for i in 0..300 {
            let (endpoint, offer) = match i % 2 {
                0 => ("whip", &offers.whip[0]),
                _ => ("whep", &offers.whep[0]),
            };
            let body = mutate(offer, &mut rng);
            let r = post_sdp(&format!("{base}/v1/{endpoint}/fuzz{i}"), &body).await?;
            let status = r.status().as_u16();
            *statuses.entry(status).or_insert(0) += 1;
            ensure!(
                status == 201 || (400..500).contains(&status),
                "mutation {i} got {status}: {}\n--- offer ---\n{body}",
                r.text().await.unwrap_or_default()
            );
        }
        println!("mutated offers: statuses {statuses:?}");
        let r = post_sdp(&format!("{base}/v1/whep/after-fuzz"), &offers.whep[1]).await?;
        ensure!(
            r.status() == 201,
            "valid offer after the mutations: {}",
            r.status()
        );
        gw.shutdown().await;
        Ok(())
    })
    .await;
}
