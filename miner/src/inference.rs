//! The served model loaded for `POST /v1/generate`: weights on the chosen device, the artifact's
//! tokenizer, and the limits that keep one request from occupying the miner.
//!
//! Generation is CPU- or GPU-bound and not cancellable, so requests run one at a time on a
//! blocking thread; a request that cannot start within [`GenerateLimits::queue_wait`] is turned
//! away as busy instead of queueing without bound.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use burn::tensor::backend::Backend;
use subnet_common::protocol::{GenerateRequest, GenerateResponse};
use subnet_model::{
    backend::{BackendError, BackendTask, Selected},
    chat::Message,
    generate::{GenerateError, GenerateOptions, generate},
    io::{IoError, load_artifact},
    llama::Llama,
    tokenizer::{Tokenizer, TokenizerError},
};

/// Bounds on one generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateLimits {
    /// Most `max_new_tokens` accepted.
    pub max_new_tokens: u32,
    /// Longest `prompt`, in bytes of UTF-8.
    pub max_prompt_bytes: usize,
    /// How long a request waits for the model while another one generates.
    pub queue_wait: Duration,
}

impl Default for GenerateLimits {
    /// 256 new tokens, 16 KiB prompts, 30 s in the queue.
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            max_prompt_bytes: 16 * 1024,
            queue_wait: Duration::from_secs(30),
        }
    }
}

/// Why the model cannot be loaded or a request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The device asked for cannot be used.
    #[error("choosing the device: {0}")]
    Device(#[from] BackendError),
    /// `config.json` or `model.safetensors` is unusable.
    #[error("loading the model: {0}")]
    Load(#[from] IoError),
    /// The tokenizer is unusable, or cannot encode the prompt.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// The generated ids could not be decoded.
    #[error("decoding the output: {0}")]
    Decode(#[source] TokenizerError),
    /// Another generation held the model for longer than the queue wait.
    #[error("the model is busy; retry later")]
    Busy,
    /// The request is outside the protocol or the limits (the caller's fault: 400).
    #[error("{0}")]
    BadRequest(String),
    /// Generation refused the input (the caller's fault: 400) or the backend failed.
    #[error("{0}")]
    Generate(#[from] GenerateError),
    /// A previous generation panicked while holding the model.
    #[error("the model is unavailable after an earlier failure; restart the miner")]
    Poisoned,
    /// The generation thread panicked.
    #[error("generation failed: {0}")]
    Panicked(String),
}

/// A model that continues token sequences, whatever its backend.
trait Generator: Send {
    fn generate(
        &self,
        prompt: &[u32],
        options: &GenerateOptions,
    ) -> Result<Vec<u32>, GenerateError>;
}

impl<B: Backend> Generator for Llama<B> {
    fn generate(
        &self,
        prompt: &[u32],
        options: &GenerateOptions,
    ) -> Result<Vec<u32>, GenerateError> {
        generate(self, prompt, options)
    }
}

/// Loads the artifact onto the selected backend.
struct LoadTask<'a> {
    dir: &'a Path,
    max_bytes: u64,
}

impl BackendTask for LoadTask<'_> {
    type Output = Result<Box<dyn Generator>, IoError>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let (_, model) = load_artifact::<B>(self.dir, self.max_bytes, &device)?;
        Ok(Box::new(model))
    }
}

/// The loaded model and its tokenizer.
pub struct Inference {
    /// One generation at a time; the lock is only taken on a blocking thread.
    model: Mutex<Box<dyn Generator>>,
    /// The artifact's tokenizer (`tokenizer.json`, else byte-level).
    tokenizer: Tokenizer,
    /// Device name for logs (`cpu`, `cuda:0`).
    device: String,
    /// Request bounds.
    limits: GenerateLimits,
    /// Admits one request to the blocking pool at a time; the others wait here, bounded. The
    /// permit lives on the blocking thread, so a caller hanging up does not free it early.
    gate: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inference")
            .field("tokenizer", &self.tokenizer.kind())
            .field("device", &self.device)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Inference {
    /// Loads `dir` (weights at most `max_bytes`) onto `device`. Blocking: call it from a
    /// blocking thread.
    pub fn load(
        dir: &Path,
        device: &Selected,
        max_bytes: u64,
        limits: GenerateLimits,
    ) -> Result<Self, InferenceError> {
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        let model = device.run(LoadTask { dir, max_bytes })?;
        Ok(Self {
            model: Mutex::new(model),
            tokenizer,
            device: device.name(),
            limits,
            gate: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// The request bounds.
    pub fn limits(&self) -> &GenerateLimits {
        &self.limits
    }

    /// The device the model runs on.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Answers one request from async code: waits for its turn (at most
    /// [`GenerateLimits::queue_wait`]), then generates on a blocking thread.
    pub async fn generate_queued(
        self: &Arc<Self>,
        request: GenerateRequest,
    ) -> Result<GenerateResponse, InferenceError> {
        let permit = tokio::time::timeout(
            self.limits.queue_wait,
            Arc::clone(&self.gate).acquire_owned(),
        )
        .await
        .map_err(|_| InferenceError::Busy)?
        .map_err(|_| InferenceError::Busy)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.generate(&request)
        })
        .await
        .map_err(|e| InferenceError::Panicked(e.to_string()))?
    }

    /// Answers one request. Blocking (runs the model): call it from a blocking thread.
    ///
    /// A `prompt` is encoded as the evaluation encodes prompts (`BOS` + text); `input_ids` are
    /// used as given. Generation stops at the tokenizer's `EOS`, which is then the last id.
    pub fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, InferenceError> {
        let prompt = self.prompt_ids(request)?;
        if request.max_new_tokens > self.limits.max_new_tokens {
            return Err(InferenceError::BadRequest(format!(
                "max_new_tokens is {}, at most {} allowed",
                request.max_new_tokens, self.limits.max_new_tokens
            )));
        }
        let options = GenerateOptions {
            max_new_tokens: request.max_new_tokens as usize,
            temperature: f64::from(request.temperature),
            seed: request.seed,
            stop_token: self.tokenizer.eos_id(),
        };
        let model = self.model.lock().map_err(|_| InferenceError::Poisoned)?;
        let output_ids = model.generate(&prompt, &options)?;
        drop(model);
        let text = self
            .tokenizer
            .decode(&output_ids)
            .map_err(InferenceError::Decode)?;
        Ok(GenerateResponse { output_ids, text })
    }

    fn prompt_ids(&self, request: &GenerateRequest) -> Result<Vec<u32>, InferenceError> {
        match (&request.prompt, &request.input_ids, &request.messages) {
            (Some(prompt), None, None) => {
                self.check_prompt_bytes("prompt", prompt.len())?;
                let mut ids: Vec<u32> = self.tokenizer.bos_id().into_iter().collect();
                ids.extend(self.tokenizer.encode(prompt)?);
                Ok(ids)
            }
            (None, Some(ids), None) => Ok(ids.clone()),
            (None, None, Some(messages)) => {
                let template = self.tokenizer.chat_template().ok_or_else(|| {
                    InferenceError::BadRequest(
                        "this model has no chat template (tokenizer_config.json's \
                         chat_template): send `prompt` or `input_ids`"
                            .into(),
                    )
                })?;
                if messages.is_empty() {
                    return Err(InferenceError::BadRequest(
                        "`messages` is empty: give at least one message".into(),
                    ));
                }
                let bytes = messages
                    .iter()
                    .map(|m| m.role.len() + m.content.len())
                    .sum();
                self.check_prompt_bytes("messages", bytes)?;
                let messages: Vec<Message> = messages
                    .iter()
                    .map(|m| Message::new(&m.role, &m.content))
                    .collect();
                let text = template
                    .render(&messages, true)
                    .map_err(|e| InferenceError::BadRequest(format!("messages: {e}")))?;
                Ok(self.tokenizer.encode(&text)?)
            }
            _ => Err(InferenceError::BadRequest(
                "give exactly one of `prompt`, `input_ids` and `messages`".into(),
            )),
        }
    }

    /// A 400 when a prompt of `bytes` (its `field`) is over the limit.
    fn check_prompt_bytes(&self, field: &str, bytes: usize) -> Result<(), InferenceError> {
        if bytes > self.limits.max_prompt_bytes {
            return Err(InferenceError::BadRequest(format!(
                "{field} is {bytes} bytes, at most {} allowed",
                self.limits.max_prompt_bytes
            )));
        }
        Ok(())
    }
}

impl InferenceError {
    /// True when the request, not the miner, is at fault (answered 400).
    pub fn is_bad_request(&self) -> bool {
        match self {
            Self::BadRequest(_) | Self::Tokenizer(_) => true,
            Self::Generate(e) => !matches!(e, GenerateError::Backend(_)),
            Self::Device(_)
            | Self::Load(_)
            | Self::Decode(_)
            | Self::Busy
            | Self::Poisoned
            | Self::Panicked(_) => false,
        }
    }
}
