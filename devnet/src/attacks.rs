//! The copies an attacker makes of the strong miner's model, for `--roster adversarial`.
//!
//! Each one rewrites an f32 safetensors artifact on the file level (no burn here): the same
//! weights under another config, the MLP's hidden units permuted (the same function, other
//! weights), Gaussian noise on every weight, and the output sharpened by scaling the final
//! norm (all logits × the factor). The validators must pay none of them.

use std::path::Path;

use anyhow::{Context, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// A model's tensors: `(name, shape, f32 values)` in name order.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// What an attacker does to the copied model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// Byte-identical weights; `config.json` gets another `pad_token_id` (a field that changes
    /// no tensor shape), so the manifest differs.
    ChangedConfig,
    /// Each layer's MLP units in another order (gate/up rows and down columns alike).
    PermutedUnits,
    /// Gaussian noise of this fraction of each tensor's RMS on every weight.
    Noise(f32),
    /// The final norm's weight (so every logit) multiplied by this factor.
    Sharpen(f32),
}

/// Writes the attacked copy of the artifact in `from` to `to` (created if missing).
pub fn write_attacked(from: &Path, to: &Path, attack: Attack) -> anyhow::Result<()> {
    crate::run::copy_dir(from, to)?;
    let config_path = to.join("config.json");
    let weights_path = to.join("model.safetensors");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("while reading {}", config_path.display()))?;
    let mut config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", config_path.display()))?;
    if attack == Attack::ChangedConfig {
        let vocab = config["vocab_size"]
            .as_u64()
            .context("config has no vocab_size")?;
        config["pad_token_id"] = serde_json::Value::from(vocab - 1);
        let text = serde_json::to_string_pretty(&config).context("encoding config.json")?;
        return std::fs::write(&config_path, text)
            .with_context(|| format!("while writing {}", config_path.display()));
    }
    let bytes = std::fs::read(&weights_path)
        .with_context(|| format!("while reading {}", weights_path.display()))?;
    let mut tensors = read(&bytes)?;
    match attack {
        Attack::ChangedConfig => {}
        Attack::PermutedUnits => {
            let inter = config["intermediate_size"]
                .as_u64()
                .context("config has no intermediate_size")? as usize;
            permute_units(&mut tensors, inter, 7);
        }
        Attack::Noise(fraction) => add_noise(&mut tensors, fraction, 11),
        Attack::Sharpen(factor) => {
            let norm = tensors
                .iter_mut()
                .find(|(name, _, _)| name == "model.norm.weight")
                .context("no model.norm.weight")?;
            norm.2.iter_mut().for_each(|v| *v *= factor);
        }
    }
    std::fs::write(&weights_path, write(&tensors)?)
        .with_context(|| format!("while writing {}", weights_path.display()))
}

fn read(bytes: &[u8]) -> anyhow::Result<Tensors> {
    let file = SafeTensors::deserialize(bytes).context("not a safetensors file")?;
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let view = file.tensor(&name)?;
            if view.dtype() != Dtype::F32 {
                bail!(
                    "{name}: {:?}, only f32 artifacts are attacked",
                    view.dtype()
                );
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((name, view.shape().to_vec(), values))
        })
        .collect()
}

fn write(tensors: &Tensors) -> anyhow::Result<Vec<u8>> {
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), raw) in tensors.iter().zip(&raw) {
        views.push((
            name.as_str(),
            TensorView::new(Dtype::F32, shape.clone(), raw)?,
        ));
    }
    Ok(safetensors::serialize(views, None)?)
}

/// SplitMix64: a small seeded generator, enough for shuffles and noise.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Permutes each layer's MLP units: `gate_proj`/`up_proj` are `[inter, hidden]` (a unit is a
/// row), `down_proj` is `[hidden, inter]` (a unit is a column).
fn permute_units(tensors: &mut Tensors, inter: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    let layers: Vec<String> = tensors
        .iter()
        .filter_map(|(name, _, _)| name.strip_suffix("mlp.gate_proj.weight").map(String::from))
        .collect();
    for prefix in layers {
        let mut order: Vec<usize> = (0..inter).collect();
        for i in (1..inter).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for (name, shape, values) in tensors.iter_mut() {
            let Some(part) = name.strip_prefix(&prefix) else {
                continue;
            };
            let old = values.clone();
            match part {
                "mlp.gate_proj.weight" | "mlp.up_proj.weight" => {
                    let width = shape[1];
                    for (new, &from) in order.iter().enumerate() {
                        values[new * width..(new + 1) * width]
                            .copy_from_slice(&old[from * width..(from + 1) * width]);
                    }
                }
                "mlp.down_proj.weight" => {
                    for row in 0..shape[0] {
                        for (new, &from) in order.iter().enumerate() {
                            values[row * inter + new] = old[row * inter + from];
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn add_noise(tensors: &mut Tensors, fraction: f32, seed: u64) {
    let mut rng = SplitMix(seed);
    for (_, _, values) in tensors.iter_mut() {
        let rms = (values.iter().map(|v| v * v).sum::<f32>() / values.len().max(1) as f32).sqrt();
        for v in values.iter_mut() {
            *v += fraction * rms * rng.normal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let config = serde_json::json!({"vocab_size": 10, "intermediate_size": 3});
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let tensors: Tensors = vec![
            (
                "model.layers.0.mlp.down_proj.weight".into(),
                vec![2, 3],
                vec![1., 2., 3., 4., 5., 6.],
            ),
            (
                "model.layers.0.mlp.gate_proj.weight".into(),
                vec![3, 2],
                vec![1., 1., 2., 2., 3., 3.],
            ),
            (
                "model.layers.0.mlp.up_proj.weight".into(),
                vec![3, 2],
                vec![4., 4., 5., 5., 6., 6.],
            ),
            ("model.norm.weight".into(), vec![2], vec![1., 2.]),
        ];
        std::fs::write(dir.join("model.safetensors"), write(&tensors).unwrap()).unwrap();
    }

    fn tensors(dir: &Path) -> Tensors {
        read(&std::fs::read(dir.join("model.safetensors")).unwrap()).unwrap()
    }

    #[test]
    fn each_attack_changes_what_it_says_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        artifact(&original);
        let before = tensors(&original);

        let changed = dir.path().join("config");
        write_attacked(&original, &changed, Attack::ChangedConfig).unwrap();
        assert_eq!(tensors(&changed), before);
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(changed.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["pad_token_id"], 9);

        let permuted = dir.path().join("permuted");
        write_attacked(&original, &permuted, Attack::PermutedUnits).unwrap();
        let after = tensors(&permuted);
        // unit u of gate and up moves together with column u of down
        let unit_of = |t: &Tensors, gate_row: f32| {
            let gate = &t[1].2;
            let row = (0..3).find(|&r| gate[r * 2] == gate_row).unwrap();
            (t[2].2[row * 2], t[0].2[row], t[0].2[3 + row])
        };
        for gate_row in [1., 2., 3.] {
            assert_eq!(unit_of(&after, gate_row), unit_of(&before, gate_row));
        }
        assert_eq!(after[3], before[3]);

        let sharp = dir.path().join("sharp");
        write_attacked(&original, &sharp, Attack::Sharpen(1.5)).unwrap();
        assert_eq!(tensors(&sharp)[3].2, vec![1.5, 3.0]);

        let noisy = dir.path().join("noisy");
        write_attacked(&original, &noisy, Attack::Noise(0.01)).unwrap();
        for ((_, _, a), (_, _, b)) in tensors(&noisy).iter().zip(&before) {
            assert_ne!(a, b);
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 0.2, "{x} vs {y}");
            }
        }
    }
}
