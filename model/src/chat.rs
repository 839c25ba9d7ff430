//! Chat templates: a model's own Jinja template (`tokenizer_config.json`'s `chat_template`)
//! rendered with minijinja the way transformers' `apply_chat_template` renders it (`trim_blocks`,
//! `lstrip_blocks`, Python string methods, `raise_exception`), so a chat prompt is byte for byte
//! what the model was trained on.
//!
//! A conversation becomes an evaluation sample with [`ChatTemplate::split`]: the prompt is every
//! message but the last rendered with the generation prompt, the completion is the last
//! (assistant) message as the full rendering continues it, up to and including the end-of-turn
//! token (the tokenizer's EOS, e.g. `<|im_end|>`).

use std::fmt;

use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};
use thiserror::Error as ThisError;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message of `role` saying `content`.
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Why a template could not be used.
#[derive(Debug, ThisError, PartialEq)]
pub enum ChatError {
    /// The template does not parse.
    #[error("the chat template does not parse: {0}")]
    Parse(String),
    /// Rendering failed (including the template's own `raise_exception`).
    #[error("rendering the chat template failed: {0}")]
    Render(String),
    /// `tokenizer_config.json`'s `chat_template` is neither a string nor a list of named ones
    /// with a `default`.
    #[error("chat_template must be a string or a list of {{name, template}} with a \"default\"")]
    Shape,
    /// The conversation cannot be split into a prompt and a completion.
    #[error("{0}")]
    Conversation(String),
}

/// A compiled chat template with the special tokens it may refer to.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_bytes", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// Compiles `source`; `bos_token` and `eos_token` are passed to it as transformers does (the
    /// EOS also ends the completion in [`ChatTemplate::split`]).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ChatError::Parse(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| ChatError::Parse(e.to_string()))?;
        Ok(Self {
            env,
            source: source.into(),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        })
    }

    /// The template of a parsed `tokenizer_config.json` (its `chat_template`, or the `default`
    /// of a list of named templates) with its `bos_token` / `eos_token`; `None` without one.
    pub fn from_tokenizer_config(config: &serde_json::Value) -> Result<Option<Self>, ChatError> {
        let source = match config.get("chat_template") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(serde_json::Value::Array(named)) => named
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .and_then(|t| t.get("template"))
                .and_then(|t| t.as_str())
                .ok_or(ChatError::Shape)?,
            Some(_) => return Err(ChatError::Shape),
        };
        let token = |role: &str| {
            match config.get(role) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => other
                    .get("content")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned),
                None => None,
            }
            .unwrap_or_default()
        };
        Self::new(source, &token("bos_token"), &token("eos_token")).map(Some)
    }

    /// The end-of-turn token (the tokenizer's EOS).
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// `messages` rendered, with the assistant turn's opening when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| ChatError::Render(e.to_string()))?;
        template
            .render(context! {
                messages => Serde(messages),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| ChatError::Render(e.to_string()))
    }

    /// `(prompt, completion)` of a conversation whose last message is the assistant's answer:
    /// the prompt is the rest rendered with the generation prompt; the completion is what the
    /// full rendering adds to it, up to and including the end-of-turn token when there is one.
    pub fn split(&self, messages: &[Message]) -> Result<(String, String), ChatError> {
        let Some((last, context)) = messages.split_last() else {
            return Err(ChatError::Conversation(
                "a conversation needs at least one message".into(),
            ));
        };
        if last.role != "assistant" {
            return Err(ChatError::Conversation(format!(
                "the last message is the completion and must be the assistant's, not {:?}",
                last.role
            )));
        }
        if last.content.is_empty() {
            return Err(ChatError::Conversation(
                "the assistant's answer is empty".into(),
            ));
        }
        let prompt = self.render(context, true)?;
        let full = self.render(messages, false)?;
        let rest = full.strip_prefix(prompt.as_str()).ok_or_else(|| {
            ChatError::Conversation(
                "the template renders the conversation without the prompt it renders for its \
                 first messages; it cannot be split into prompt and completion"
                    .into(),
            )
        })?;
        let answer = rest.find(&last.content).ok_or_else(|| {
            ChatError::Conversation("the rendered conversation does not contain the answer".into())
        })? + last.content.len();
        let end = match (!self.eos_token.is_empty())
            .then(|| rest[answer..].find(&self.eos_token))
            .flatten()
        {
            Some(at) => answer + at + self.eos_token.len(),
            None => rest.len(),
        };
        Ok((prompt, rest[..end].to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn chatml() -> ChatTemplate {
        ChatTemplate::new(CHATML, "<|im_start|>", "<|im_end|>").unwrap()
    }

    #[test]
    fn renders_chatml_with_and_without_the_generation_prompt() {
        let messages = [Message::new("user", "Hi")];
        assert_eq!(
            chatml().render(&messages, true).unwrap(),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(
            !chatml()
                .render(&messages, false)
                .unwrap()
                .ends_with("assistant\n")
        );
    }

    #[test]
    fn a_conversation_splits_into_the_prompt_and_the_answer_with_its_end_of_turn() {
        let messages = [Message::new("user", "2+2?"), Message::new("assistant", "4")];
        let (prompt, completion) = chatml().split(&messages).unwrap();
        assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt:?}");
        assert_eq!(completion, "4<|im_end|>");
        let wrong = [Message::new("user", "2+2?")];
        assert!(
            chatml()
                .split(&wrong)
                .unwrap_err()
                .to_string()
                .contains("assistant")
        );
        assert!(chatml().split(&[]).is_err());
    }

    #[test]
    fn python_string_methods_and_raise_exception_work_as_in_transformers() {
        let template = ChatTemplate::new(
            "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('bad role ' + m.role) }}{% endif %}[{{ m.content.strip() | upper }}]{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            template
                .render(&[Message::new("user", "  hi ")], false)
                .unwrap(),
            "[HI]"
        );
        let err = template
            .render(&[Message::new("tool", "x")], false)
            .unwrap_err();
        assert!(err.to_string().contains("bad role tool"), "{err}");
    }

    #[test]
    fn the_template_comes_from_tokenizer_config_in_either_form() {
        let config = serde_json::json!({"chat_template": CHATML, "eos_token": "<|im_end|>", "bos_token": {"content": "<|im_start|>"}});
        let template = ChatTemplate::from_tokenizer_config(&config)
            .unwrap()
            .unwrap();
        assert_eq!(template.eos_token(), "<|im_end|>");
        let named = serde_json::json!({"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": CHATML}]});
        assert!(
            ChatTemplate::from_tokenizer_config(&named)
                .unwrap()
                .is_some()
        );
        assert!(
            ChatTemplate::from_tokenizer_config(&serde_json::json!({}))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            ChatTemplate::from_tokenizer_config(&serde_json::json!({"chat_template": 3}))
                .unwrap_err(),
            ChatError::Shape
        );
        assert!(matches!(
            ChatTemplate::new("{% if %}", "", ""),
            Err(ChatError::Parse(_))
        ));
    }
}
