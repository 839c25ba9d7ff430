//! Seeded prompt → completion generators and JSONL datasets.
