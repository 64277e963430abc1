//! An IVF writer with the publisher's own clock: frames are stamped with their RTP timestamps
//! in milliseconds (a 1/1000 timebase, so a file lasts the time it covers whatever the frame
//! rate), the header's length field (which ffmpeg reads as the duration in timebase units)
//! gets that time, and the header gets the first key frame's size (VP8, VP9). rtc's `IVFWriter` numbers frames
//! 0, 1, 2… on a fixed 1/30 s clock and writes a fixed size, so a 15 fps publisher's file would
//! last half its time. Frame assembly follows rtc's writer, with rtc's depacketizers.

use std::io::{Seek, SeekFrom, Write};

use bytes::{Bytes, BytesMut};
use rtc::media::io::Writer;
use rtc::media::io::ivf_writer::IvfCodec;
use rtc::rtp;
use rtc::rtp::codec::av1::Av1Depacketizer;
use rtc::rtp::packetizer::Depacketizer;
use rtc::shared::error::{Error, Result};

/// RTP video clock rate.
const VIDEO_CLOCK_HZ: u64 = 90_000;
/// The files' timebase: milliseconds (a u32 length lasts 49 days).
const TIMEBASE_HZ: u32 = 1_000;
const HEADER_LEN: u64 = 32;

/// Writes one video track to an IVF file.
pub(crate) struct TimedIvfWriter<W: Write + Seek> {
    out: W,
    codec: IvfCodec,
    /// Frames written.
    frames: u32,
    /// Width and height of the first key frame, once known.
    size: Option<(u16, u16)>,
    seen_key_frame: bool,
    frame: Option<BytesMut>,
    /// The first frame's RTP timestamp and the unwrapped time since, in clock ticks.
    first_timestamp: Option<u32>,
    last_timestamp: u32,
    elapsed: u64,
    last_pts_ms: u64,
    av1: Av1Depacketizer,
}

impl<W: Write + Seek> TimedIvfWriter<W> {
    pub fn new(mut out: W, codec: IvfCodec) -> Result<Self> {
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(b"DKIF");
        header.extend_from_slice(&0u16.to_le_bytes()); // version
        header.extend_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        header.extend_from_slice(&codec.fourcc());
        header.extend_from_slice(&[0; 4]); // width, height: set on close
        header.extend_from_slice(&TIMEBASE_HZ.to_le_bytes()); // timebase denominator
        header.extend_from_slice(&1u32.to_le_bytes()); // timebase numerator
        header.extend_from_slice(&[0; 8]); // length (set on close), unused
        out.write_all(&header).map_err(io)?;
        Ok(Self {
            out,
            codec,
            frames: 0,
            size: None,
            seen_key_frame: false,
            frame: None,
            first_timestamp: None,
            last_timestamp: 0,
            elapsed: 0,
            last_pts_ms: 0,
            av1: Av1Depacketizer::new(),
        })
    }

    /// The frame's presentation time in milliseconds since the first frame.
    fn pts_ms(&mut self, timestamp: u32) -> u64 {
        self.ticks(timestamp) * u64::from(TIMEBASE_HZ) / VIDEO_CLOCK_HZ
    }

    /// RTP clock ticks since the first frame, across wraps.
    fn ticks(&mut self, timestamp: u32) -> u64 {
        match self.first_timestamp {
            None => {
                self.first_timestamp = Some(timestamp);
                self.last_timestamp = timestamp;
                0
            }
            Some(_) => {
                // Reordered or repeated timestamps step back by less than half the range.
                let step = timestamp.wrapping_sub(self.last_timestamp);
                if step < u32::MAX / 2 {
                    self.elapsed += u64::from(step);
                    self.last_timestamp = timestamp;
                }
                self.elapsed
            }
        }
    }

    fn write_frame(&mut self, frame: &[u8], timestamp: u32) -> Result<()> {
        let pts = self.pts_ms(timestamp);
        self.last_pts_ms = pts;
        self.out
            .write_all(&(frame.len() as u32).to_le_bytes())
            .and_then(|()| self.out.write_all(&pts.to_le_bytes()))
            .and_then(|()| self.out.write_all(frame))
            .map_err(io)?;
        self.frames += 1;
        Ok(())
    }

    /// Appends a depacketized payload; on the frame's last packet (marker), writes the frame.
    fn take(&mut self, payload: Bytes, packet: &rtp::Packet) -> Result<()> {
        self.frame
            .get_or_insert_with(BytesMut::new)
            .extend_from_slice(&payload);
        if !packet.header.marker {
            return Ok(());
        }
        let Some(frame) = self.frame.take().filter(|f| !f.is_empty()) else {
            return Ok(());
        };
        if self.size.is_none() {
            self.size = match self.codec {
                IvfCodec::Vp8 => vp8_key_frame_size(&frame),
                IvfCodec::Vp9 => vp9_key_frame_size(&frame),
                _ => None,
            };
        }
        if self.codec == IvfCodec::Av1 {
            // A temporal delimiter OBU opens each temporal unit in IVF.
            let mut unit = Vec::with_capacity(frame.len() + 2);
            unit.extend_from_slice(&[0x12, 0x00]);
            unit.extend_from_slice(&frame);
            return self.write_frame(&unit, packet.header.timestamp);
        }
        self.write_frame(&frame, packet.header.timestamp)
    }

    fn vp8(&mut self, packet: &rtp::Packet) -> Result<()> {
        let mut depacketizer = rtp::codec::vp8::Vp8Packet::default();
        let payload = depacketizer.depacketize(&packet.payload)?;
        let key_frame = payload.first().is_some_and(|b| b & 0x01 == 0);
        if (!self.seen_key_frame && !key_frame)
            || (self.frame.is_none() && !depacketizer.is_partition_head(&packet.payload))
        {
            return Ok(());
        }
        self.seen_key_frame = true;
        self.take(payload, packet)
    }

    fn vp9(&mut self, packet: &rtp::Packet) -> Result<()> {
        let mut depacketizer = rtp::codec::vp9::Vp9Packet::default();
        let payload = depacketizer.depacketize(&packet.payload)?;
        if (!self.seen_key_frame && depacketizer.p) || (self.frame.is_none() && !depacketizer.b) {
            return Ok(());
        }
        self.seen_key_frame = true;
        self.take(payload, packet)
    }

    fn av1(&mut self, packet: &rtp::Packet) -> Result<()> {
        let payload = self.av1.depacketize(&packet.payload)?;
        if !self.seen_key_frame {
            // A new coded video sequence, or a sequence header OBU first.
            let sequence_header = payload.first().is_some_and(|b| (b & 0x78) >> 3 == 1);
            if !(self.av1.n || sequence_header) {
                return Ok(());
            }
            self.seen_key_frame = true;
        }
        self.take(payload, packet)
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Other(e.to_string())
}

impl<W: Write + Seek> Writer for TimedIvfWriter<W> {
    fn write_rtp(&mut self, packet: &rtp::Packet) -> Result<()> {
        if packet.payload.is_empty() {
            return Ok(());
        }
        match self.codec {
            IvfCodec::Vp8 => self.vp8(packet),
            IvfCodec::Vp9 => self.vp9(packet),
            _ => self.av1(packet),
        }
    }

    /// Fills in the size and the length: the last frame's time plus one average frame.
    fn close(&mut self) -> Result<()> {
        let (width, height) = self.size.unwrap_or((0, 0));
        let frame_ms = match self.frames {
            0 | 1 => 0,
            n => self.last_pts_ms / u64::from(n - 1),
        };
        let length = u32::try_from(self.last_pts_ms + frame_ms).unwrap_or(u32::MAX);
        let result = self
            .out
            .seek(SeekFrom::Start(12))
            .and_then(|_| self.out.write_all(&width.to_le_bytes()))
            .and_then(|()| self.out.write_all(&height.to_le_bytes()))
            .and_then(|()| self.out.seek(SeekFrom::Start(24)))
            .and_then(|_| self.out.write_all(&length.to_le_bytes()))
            .and_then(|()| self.out.flush());
        result.map_err(io)
    }
}

/// A VP8 key frame's size (RFC 6386 §9.1: 3-byte tag, start code, then 14-bit sizes).
fn vp8_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

/// A VP9 key frame's size, from its uncompressed header (VP9 bitstream spec §6.2).
fn vp9_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    let mut bits = Bits { data: frame, at: 0 };
    if bits.read(2)? != 2 {
        return None; // frame_marker
    }
    let profile = bits.read(1)? | bits.read(1)? << 1;
    if profile == 3 {
        bits.read(1)?;
    }
    if bits.read(1)? == 1 || bits.read(1)? != 0 {
        return None; // show_existing_frame, or not a key frame
    }
    bits.read(2)?; // show_frame, error_resilient_mode
    if bits.read(24)? != 0x49_83_42 {
        return None; // sync code
    }
    if profile >= 2 {
        bits.read(1)?; // ten_or_twelve_bit
    }
    let color_space = bits.read(3)?;
    if color_space != 7 {
        bits.read(1)?; // color_range
        if profile == 1 || profile == 3 {
            bits.read(3)?; // subsampling_x, subsampling_y, reserved
        }
    } else if profile == 1 || profile == 3 {
        bits.read(1)?;
    }
    let width = bits.read(16)? + 1;
    let height = bits.read(16)? + 1;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

/// A most-significant-bit-first reader.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, count: usize) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = self.data.get(self.at / 8)?;
            value = value << 1 | u32::from(byte >> (7 - self.at % 8) & 1);
            self.at += 1;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vp8_key_frame_names_its_size() {
        // Tag (key frame, show), start code, 640 × 480.
        let frame = [
            0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0x00,
        ];
        assert_eq!(vp8_key_frame_size(&frame), Some((640, 480)));
        assert_eq!(vp8_key_frame_size(&[0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn a_vp9_key_frame_names_its_size() {
        // Profile 0 key frame: marker 10, profile 00, show_existing 0, key 0, show 1, er 0,
        // sync code, color space 1 (BT.601), range 0, then 319 and 179 (320 × 180).
        let mut bits = String::from("10");
        bits += "00";
        bits += "0";
        bits += "0";
        bits += "1";
        bits += "0";
        bits += "010010011000001101000010";
        bits += "001";
        bits += "0";
        bits += &format!("{:016b}", 319);
        bits += &format!("{:016b}", 179);
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let frame: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        assert_eq!(vp9_key_frame_size(&frame), Some((320, 180)));
    }

    #[test]
    fn frames_are_stamped_with_rtp_time_across_a_wrap() {
        let out = std::io::Cursor::new(Vec::new());
        let mut writer = TimedIvfWriter::new(out, IvfCodec::Vp8).unwrap();
        assert_eq!(writer.ticks(u32::MAX - 1499), 0);
        assert_eq!(writer.ticks(500), 2000);
        assert_eq!(writer.ticks(400), 2000); // reordered: not back in time
        assert_eq!(writer.ticks(6500), 8000);
        assert_eq!(writer.pts_ms(6500 + 90_000), 1088);
    }
}
