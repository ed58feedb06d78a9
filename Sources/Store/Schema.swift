/// The store's schema as an ordered list of migrations; `PRAGMA user_version` records how many
/// have been applied. Never edit a shipped migration: append a new one. See docs/store.md.
enum Schema {
    static let migrations: [String] = [
        // 1: the walking skeleton's tables.
        """
        CREATE TABLE runs(
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            manifest_path TEXT NOT NULL,
            manifest_hash TEXT NOT NULL,
            candela_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            parameters TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE models(
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            classes TEXT NOT NULL,
            preprocessing TEXT NOT NULL
        );
        CREATE TABLE items(
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            dataset TEXT NOT NULL,
            path TEXT NOT NULL,
            label TEXT,
            mask_path TEXT,
            content_hash TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            UNIQUE(run_id, path)
        );
        CREATE TABLE predictions(
            item_id INTEGER NOT NULL REFERENCES items(id),
            model_hash TEXT NOT NULL REFERENCES models(hash),
            class_index INTEGER NOT NULL,
            class_name TEXT NOT NULL,
            probability REAL NOT NULL,
            probabilities TEXT NOT NULL,
            PRIMARY KEY(item_id, model_hash)
        );
        CREATE TABLE attributions(
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id),
            model_hash TEXT NOT NULL REFERENCES models(hash),
            explainer TEXT NOT NULL,
            method TEXT NOT NULL,
            parameters TEXT NOT NULL,
            target INTEGER NOT NULL,
            cache_key TEXT NOT NULL,
            raw_shape TEXT NOT NULL,
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            heatmap BLOB NOT NULL,
            seconds REAL NOT NULL,
            UNIQUE(item_id, model_hash, explainer, target)
        );
        CREATE INDEX attributions_cache_key ON attributions(cache_key);
        CREATE TABLE metrics(
            item_id INTEGER NOT NULL REFERENCES items(id),
            explainer TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL,
            PRIMARY KEY(item_id, explainer, name)
        );
        CREATE TABLE failures(
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            item_path TEXT NOT NULL,
            stage TEXT NOT NULL,
            message TEXT NOT NULL
        );
        """,
        // 2: lookups by content for cache reuse (same image bytes, same model).
        """
        CREATE INDEX items_content_hash ON items(content_hash);
        """,
        // 3: gates and their verdicts; tissue masks; run parameters (shard, resume, merge) are
        // JSON in runs.parameters, which migration 1 already has.
        """
        CREATE TABLE gate_results(
            run_id INTEGER NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            metric TEXT NOT NULL,
            explainer TEXT,
            comparison TEXT NOT NULL,
            threshold REAL NOT NULL,
            value REAL,
            passed INTEGER NOT NULL,
            PRIMARY KEY(run_id, name)
        );
        ALTER TABLE items ADD COLUMN tissue_mask_path TEXT;
        """,
    ]
}
