//! What the chart tests share: fixtures, PNG decoding and a perceptual hash.

#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A decoded PNG: width, height and RGB bytes. Panics (failing the test) if `png` is not a
/// valid 8-bit RGB image.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn decode(png_bytes: &[u8]) -> Image {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut rgb = vec![0; reader.output_buffer_size().expect("a sane size")];
        let info = reader.next_frame(&mut rgb).expect("PNG data");
        assert_eq!(info.color_type, png::ColorType::Rgb, "RGB, opaque");
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        rgb.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Mean luminance of a block, 0 to 255.
    fn block_luma(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for y in y0..y1.max(y0 + 1).min(self.height) {
            for x in x0..x1.max(x0 + 1).min(self.width) {
                let [r, g, b] = self.pixel(x, y);
                sum += 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
                n += 1.0;
            }
        }
        if n > 0.0 {
            sum / n
        } else {
            0.0
        }
    }

    /// A difference hash of 16x16 bits: the image averaged into 17x16 blocks, each bit telling
    /// whether a block is brighter than its right neighbour. Text rendered a pixel apart moves
    /// few bits; a panel moved or recoloured moves many.
    pub fn dhash(&self) -> [u64; 4] {
        let (cols, rows) = (17u32, 16u32);
        let mut bits = [0u64; 4];
        for r in 0..rows {
            let y0 = r * self.height / rows;
            let y1 = (r + 1) * self.height / rows;
            let lumas: Vec<f64> = (0..cols)
                .map(|c| {
                    self.block_luma(c * self.width / cols, y0, (c + 1) * self.width / cols, y1)
                })
                .collect();
            for c in 0..cols - 1 {
                if lumas[c as usize] > lumas[c as usize + 1] {
                    let bit = r * 16 + c;
                    bits[(bit / 64) as usize] |= 1 << (bit % 64);
                }
            }
        }
        bits
    }
}

pub fn hash_hex(h: [u64; 4]) -> String {
    h.iter().map(|w| format!("{w:016x}")).collect()
}

pub fn hamming(a: [u64; 4], hex: &str) -> u32 {
    let b: Vec<u64> = (0..4)
        .map(|i| u64::from_str_radix(&hex[i * 16..(i + 1) * 16], 16).expect("hex hash"))
        .collect();
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
