-- The shop's first schema (v1 on).
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
