-- The competition's base model's per-sample losses in each epoch (NULL when it pins none): what
-- every entry had to beat, kept so `validator verify` can decide the base gate again.
ALTER TABLE epochs ADD COLUMN base_losses DOUBLE PRECISION[];
