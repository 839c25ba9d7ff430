// `sqlx::migrate!` embeds ../migrations/validator at compile time; rebuild when a migration is added
// or changed (stable Rust cannot track that directory from the macro itself).
fn main() {
    println!("cargo:rerun-if-changed=../migrations/validator");
}
