//! Simulcast: a publisher track's layers (one SSRC per RTP stream id, `rid`) and which layer
//! each subscriber receives. Switching restarts the subscriber's video on a keyframe of the new
//! layer; the rewriter keeps its sequence numbers and timestamps continuous.

use std::time::Instant;

use super::engine::Engine;
use super::offer::MediaKind;
use super::peer::PeerMedia;
use super::{LayerChoice, MediaError};

/// One RTP stream of a simulcast track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    pub ssrc: u32,
    pub rid: Option<String>,
}

/// Rids read as the best layer, in order, when a subscriber has not chosen (browsers and
/// WHIP clients name layers `q`/`h`/`f`, `low`/`mid`/`high` or `0`/`1`/`2`).
const BEST_FIRST: [&str; 5] = ["f", "high", "h", "hi", "2"];

/// The layer a subscriber gets by default: the best-named one, else the first that opened.
pub(crate) fn default_layer(layers: &[Layer]) -> usize {
    BEST_FIRST
        .iter()
        .find_map(|best| layers.iter().position(|l| l.rid.as_deref() == Some(*best)))
        .unwrap_or(0)
}

/// The index of the layer `choice` selects; `None` when video is switched off. A rid the
/// publisher does not (or no longer) send falls back to the default.
pub(crate) fn chosen_layer(layers: &[Layer], choice: &LayerChoice) -> Option<usize> {
    match choice {
        LayerChoice::Off => None,
        LayerChoice::Default => Some(default_layer(layers)),
        LayerChoice::Rid(rid) => Some(
            layers
                .iter()
                .position(|l| l.rid.as_deref() == Some(rid.as_str()))
                .unwrap_or_else(|| default_layer(layers)),
        ),
    }
}

impl Engine {
    /// The rids of the video layers the subscriber `id`'s feed is publishing.
    pub(super) fn layers(&self, room: &str, id: &str) -> Result<Vec<String>, MediaError> {
        let key = self.find(room, id)?;
        let feed = self
            .peers
            .get(&key)
            .map(|p| p.feed.clone())
            .ok_or_else(|| MediaError::SessionNotFound(id.to_owned()))?;
        let publisher = self.feeds.get(&feed).and_then(|f| f.publisher);
        let rids = match publisher.and_then(|p| self.peers.get(&p)).map(|p| &p.media) {
            Some(PeerMedia::Publisher { tracks }) => tracks
                .iter()
                .filter(|t| t.kind == MediaKind::Video)
                .flat_map(|t| t.layers.iter().filter_map(|l| l.rid.clone()))
                .collect(),
            _ => Vec::new(),
        };
        Ok(rids)
    }

    /// Makes the subscriber `id` receive the video layer `choice` from its next keyframe.
    pub(super) fn select_layer(
        &mut self,
        room: &str,
        id: &str,
        choice: LayerChoice,
    ) -> Result<(), MediaError> {
        let (feed, outputs) = self.video_outputs(room, id)?;
        for output in outputs {
            if output.layer != choice {
                output.layer = choice.clone();
                output.forwarder.restart_on_keyframe();
            }
        }
        tracing::info!(session = %id, room, layer = ?choice, "subscriber layer selected");
        self.request_feed_keyframe(&feed, Instant::now());
        Ok(())
    }
}

impl Engine {
    /// Subscriber `id`'s feed and video outputs (a layer is chosen only by a subscriber).
    fn video_outputs(
        &mut self,
        room: &str,
        id: &str,
    ) -> Result<(super::feed::FeedKey, Vec<&mut super::peer::OutputTrack>), MediaError> {
        let (_, peer) = self.find_peer(room, id)?;
        let PeerMedia::Subscriber { outputs } = &mut peer.media else {
            return Err(MediaError::UnusableOffer(
                "only a subscriber chooses a layer".into(),
            ));
        };
        let video = outputs
            .iter_mut()
            .filter(|o| o.kind == MediaKind::Video)
            .collect();
        Ok((peer.feed.clone(), video))
    }

    /// Makes the subscriber `id` receive VP8 temporal layers up to `layer` (`None`: all).
    pub(super) fn select_temporal_layer(
        &mut self,
        room: &str,
        id: &str,
        layer: Option<u8>,
    ) -> Result<(), MediaError> {
        for output in self.video_outputs(room, id)?.1 {
            output.forwarder.set_max_temporal_layer(layer);
        }
        tracing::info!(session = %id, room, ?layer, "subscriber temporal layer selected");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(rids: &[&str]) -> Vec<Layer> {
        rids.iter()
            .enumerate()
            .map(|(i, r)| Layer {
                ssrc: i as u32 + 1,
                rid: Some((*r).to_owned()),
            })
            .collect()
    }

    #[test]
    fn best_named_layer_is_the_default_whatever_the_opening_order() {
        assert_eq!(default_layer(&layers(&["q", "f", "h"])), 1);
        assert_eq!(default_layer(&layers(&["low", "mid", "high"])), 2);
        assert_eq!(default_layer(&layers(&["a", "b"])), 0);
        assert_eq!(default_layer(&[Layer { ssrc: 7, rid: None }]), 0);
    }

    #[test]
    fn chosen_rid_wins_unknown_rid_falls_back_and_off_sends_nothing() {
        let l = layers(&["q", "h", "f"]);
        assert_eq!(chosen_layer(&l, &LayerChoice::Rid("q".into())), Some(0));
        assert_eq!(chosen_layer(&l, &LayerChoice::Rid("x".into())), Some(2));
        assert_eq!(chosen_layer(&l, &LayerChoice::Default), Some(2));
        assert_eq!(chosen_layer(&l, &LayerChoice::Off), None);
    }
}
