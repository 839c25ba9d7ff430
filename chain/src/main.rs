fn main() -> anyhow::Result<()> {
    anyhow::bail!("devchain: no commands yet")
}
