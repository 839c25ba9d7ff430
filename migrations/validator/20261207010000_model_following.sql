-- Per open instruction (a competition's `[open]`), the share of its constraints the model's greedy
-- answer kept, in task order; empty when the competition has none or the model was not
-- evaluated. Kept so `validator verify` can hold the following contests again.
ALTER TABLE model_evals ADD COLUMN following DOUBLE PRECISION[] NOT NULL DEFAULT '{}';
