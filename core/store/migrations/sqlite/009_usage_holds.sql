-- A running turn holds its estimated cost as a usage row (purpose 'reserved') until it ends;
-- ending a turn deletes its hold by turn id.

CREATE INDEX usage_turn ON usage (turn_id);
