//! `POST /v1/generate` on a miner serving a tiny real model.

use reqwest::StatusCode;
use serde_json::{Value, json};
use subnet_common::protocol::GenerateResponse;
use subnet_model::{
    backend::Cpu,
    chat::Message,
    config::LlamaConfig,
    generate::{GenerateOptions, generate},
    io::{load_artifact, save_artifact},
    tokenizer::{BOS, BYTE_VOCAB_SIZE, ByteTokenizer, EOS, Tokenizer},
};

use crate::helpers::{TestApp, spawn_app, spawn_app_generating, spawn_app_with_model};

/// A randomly initialised byte-level model, small enough to run in milliseconds.
fn tiny_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tiny_config();
    let model = config.init::<Cpu>(&Default::default());
    save_artifact(&model, &config, dir.path()).expect("save model");
    dir
}

/// The byte-level tiny model's config.
fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        vocab_size: BYTE_VOCAB_SIZE,
        max_position_embeddings: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        tie_word_embeddings: true,
        bos_token_id: Some(BOS),
        eos_token_id: Some(EOS),
        pad_token_id: None,
    }
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post_json(app.url("/v1/generate"), &app.miner.account_id(), body)
        .expect("json")
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn greedy_output_matches_a_local_run_of_the_same_artifact() {
    let dir = tiny_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    let res = post(&app, &json!({"prompt": "12+30=", "max_new_tokens": 8})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: GenerateResponse = res.json().await.expect("json");

    // What a validator's spot-check computes from the downloaded files.
    let (_, model) = load_artifact::<Cpu>(dir.path(), u64::MAX, &Default::default()).expect("load");
    let mut prompt = vec![BOS];
    prompt.extend(ByteTokenizer.encode("12+30="));
    let options = GenerateOptions {
        max_new_tokens: 8,
        temperature: 0.0,
        seed: 0,
        stop_token: Some(EOS),
    };
    let local = generate(&model, &prompt, &options).expect("generate");
    assert!(!local.is_empty());
    assert_eq!(answer.output_ids, local);
    assert_eq!(answer.text, ByteTokenizer.decode(&local));
}

#[tokio::test]
async fn sampling_is_repeatable_by_seed_and_input_ids_are_used_as_given() {
    let dir = tiny_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    let request =
        json!({"input_ids": [256, 65, 66], "max_new_tokens": 12, "temperature": 1.5, "seed": 7});
    let first: GenerateResponse = post(&app, &request).await.json().await.expect("json");
    let second: GenerateResponse = post(&app, &request).await.json().await.expect("json");
    assert_eq!(first, second);
    assert!(!first.output_ids.is_empty() && first.output_ids.len() <= 12);
}

/// A random model for the model crate's byte-level BPE fixture (355 ids), with a small chat
/// template in its `tokenizer_config.json`.
fn chat_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LlamaConfig {
        vocab_size: 360,
        bos_token_id: Some(0),
        eos_token_id: Some(1),
        max_position_embeddings: 256,
        ..tiny_config()
    };
    let model = config.init::<Cpu>(&Default::default());
    save_artifact(&model, &config, dir.path()).expect("save model");
    let fixture = crate::helpers::workspace_root()
        .join("model/tests/fixtures/tokenizer-bytelevel-bpe/tokenizer.json");
    std::fs::copy(fixture, dir.path().join("tokenizer.json")).expect("tokenizer");
    let tokenizer_config = json!({
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>",
        "chat_template": "{% for m in messages %}<|begin_of_text|>{{ m.role }}\n{{ m.content }}<|end_of_text|>\n{% endfor %}{% if add_generation_prompt %}<|begin_of_text|>assistant\n{% endif %}",
    });
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        tokenizer_config.to_string(),
    )
    .expect("tokenizer config");
    dir
}

#[tokio::test]
async fn messages_are_rendered_with_the_models_chat_template() {
    let dir = chat_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "sort(52913)="},
    ]);
    let res = post(&app, &json!({"messages": messages, "max_new_tokens": 6})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: GenerateResponse = res.json().await.expect("json");

    // The conversation as the chat competitions render it, continued locally.
    let tokenizer = Tokenizer::from_model_dir(dir.path()).expect("tokenizer");
    let template = tokenizer.chat_template().expect("template");
    let text = template
        .render(
            &[
                Message::new("system", "Be brief."),
                Message::new("user", "sort(52913)="),
            ],
            true,
        )
        .expect("render");
    assert!(text.ends_with("<|begin_of_text|>assistant\n"), "{text}");
    let prompt = tokenizer.encode(&text).expect("encode");
    let (_, model) = load_artifact::<Cpu>(dir.path(), u64::MAX, &Default::default()).expect("load");
    let options = GenerateOptions {
        max_new_tokens: 6,
        temperature: 0.0,
        seed: 0,
        stop_token: tokenizer.eos_id(),
    };
    let local = generate(&model, &prompt, &options).expect("generate");
    assert!(!local.is_empty());
    assert_eq!(answer.output_ids, local);

    // Only one form at a time; an empty conversation; a bad message.
    for body in [
        json!({"messages": messages, "prompt": "a", "max_new_tokens": 1}),
        json!({"messages": [], "max_new_tokens": 1}),
        json!({"messages": [{"role": "user"}], "max_new_tokens": 1}),
    ] {
        let res = post(&app, &body).await;
        assert!(res.status().is_client_error(), "{body}: {}", res.status());
    }
}

#[tokio::test]
async fn messages_to_a_model_without_a_chat_template_are_400() {
    let dir = tiny_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 1});
    let res = post(&app, &body).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err: Value = res.json().await.expect("json");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("chat template")),
        "{err}"
    );
}

#[tokio::test]
async fn requests_outside_the_protocol_or_limits_are_400() {
    let dir = tiny_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    for body in [
        json!({"prompt": "a", "input_ids": [1], "max_new_tokens": 1}),
        json!({"max_new_tokens": 1}),
        json!({"prompt": "a", "max_new_tokens": 100_000}),
        json!({"prompt": "a", "max_new_tokens": 1, "temperature": -1.0}),
        json!({"input_ids": [9999], "max_new_tokens": 1}),
        json!({"input_ids": [], "max_new_tokens": 1}),
        json!({"input_ids": vec![65; 64], "max_new_tokens": 1}),
    ] {
        let res = post(&app, &body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["error"], "bad_request", "{body}");
    }
    let res = post(
        &app,
        &json!({"prompt": "a", "max_new_tokens": 1, "temprature": 1}),
    )
    .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let err: Value = res.json().await.expect("json error shape");
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("temprature")),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_loaded_model_generate_is_404() {
    let files_only = tiny_model_dir();
    for app in [
        spawn_app().await,
        spawn_app_with_model(files_only.path()).await,
    ] {
        let res = post(&app, &json!({"prompt": "a", "max_new_tokens": 1})).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let err: Value = res.json().await.expect("json");
        assert_eq!(err["message"], "this miner serves no model");
    }
}

#[tokio::test]
async fn unsigned_generate_is_401() {
    let dir = tiny_model_dir();
    let app = spawn_app_generating(dir.path()).await;
    let res = reqwest::Client::new()
        .post(app.url("/v1/generate"))
        .json(&json!({"prompt": "a", "max_new_tokens": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_directory_that_is_not_a_model_stops_start_up_with_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), b"{}").expect("write");
    std::fs::write(dir.path().join("model.safetensors"), b"nope").expect("write");
    let config = subnet_miner::startup::ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 16,
        auth_max_age: std::time::Duration::from_secs(10),
        model: Some(subnet_miner::startup::ModelConfig {
            dir: dir.path().to_path_buf(),
            competition: "tiny-v1".into(),
            device: Some(subnet_model::backend::DeviceChoice::Cpu),
        }),
    };
    let keypair = subnet_common::keys::Keypair::from_uri("//Bob").expect("key");
    let err = subnet_miner::startup::Application::build(
        &config,
        keypair,
        subnet_common::btauth::AllowAnySigner,
    )
    .await
    .err()
    .expect("start-up refused");
    assert!(format!("{err:#}").contains("/v1/generate"), "{err:#}");
}
