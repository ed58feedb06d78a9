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
        // 4: a run covers every dataset x model of its manifest. Items are unique per
        // (run, dataset, path): one file may sit in two datasets. Metrics carry the model whose
        // heatmap they measure; rows written before are given their item's one model.
        // (SQLite cannot change a constraint in place: both tables are rebuilt, with foreign
        // keys off for the migration, as SQLite's ALTER TABLE page describes.)
        """
        CREATE TABLE items_v4(
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            dataset TEXT NOT NULL,
            path TEXT NOT NULL,
            label TEXT,
            mask_path TEXT,
            content_hash TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            tissue_mask_path TEXT,
            UNIQUE(run_id, dataset, path)
        );
        INSERT INTO items_v4(id, run_id, dataset, path, label, mask_path, content_hash, width, height, tissue_mask_path)
            SELECT id, run_id, dataset, path, label, mask_path, content_hash, width, height, tissue_mask_path FROM items;
        DROP TABLE items;
        ALTER TABLE items_v4 RENAME TO items;
        CREATE INDEX items_content_hash ON items(content_hash);
        CREATE TABLE metrics_v4(
            item_id INTEGER NOT NULL REFERENCES items(id),
            model_hash TEXT NOT NULL,
            explainer TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL,
            PRIMARY KEY(item_id, model_hash, explainer, name)
        );
        INSERT INTO metrics_v4(item_id, model_hash, explainer, name, value)
            SELECT m.item_id,
                   COALESCE((SELECT a.model_hash FROM attributions a WHERE a.item_id = m.item_id AND a.explainer = m.explainer LIMIT 1),
                            (SELECT p.model_hash FROM predictions p WHERE p.item_id = m.item_id LIMIT 1), ''),
                   m.explainer, m.name, m.value
            FROM metrics m;
        DROP TABLE metrics;
        ALTER TABLE metrics_v4 RENAME TO metrics;
        """,
        // 5: whole-slide images. A tile is an item with its slide and level-0 rectangle; a slide
        // has its header, tissue pieces and a small view; verdicts per slide and tissue piece and
        // stitched heatmaps are the run finisher's. Heatmaps keep the range they were normalized
        // from (heat_low, heat_high), so that a slide's tiles can be put on one scale.
        """
        ALTER TABLE items ADD COLUMN slide_path TEXT;
        ALTER TABLE items ADD COLUMN tile_x INTEGER;
        ALTER TABLE items ADD COLUMN tile_y INTEGER;
        ALTER TABLE items ADD COLUMN tile_width INTEGER;
        ALTER TABLE items ADD COLUMN tile_height INTEGER;
        ALTER TABLE items ADD COLUMN tile_level INTEGER;
        ALTER TABLE items ADD COLUMN tissue REAL;
        ALTER TABLE items ADD COLUMN piece INTEGER;
        ALTER TABLE items ADD COLUMN annotation_path TEXT;
        ALTER TABLE attributions ADD COLUMN heat_low REAL;
        ALTER TABLE attributions ADD COLUMN heat_high REAL;
        CREATE TABLE slides(
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            dataset TEXT NOT NULL,
            path TEXT NOT NULL,
            label TEXT,
            annotation_path TEXT,
            vendor TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            levels TEXT NOT NULL,
            mpp_x REAL,
            mpp_y REAL,
            objective_power REAL,
            quickhash TEXT NOT NULL,
            tiling TEXT NOT NULL,
            tiles INTEGER NOT NULL,
            tissue_fraction REAL NOT NULL,
            pieces TEXT NOT NULL,
            view_downsample REAL NOT NULL,
            view BLOB NOT NULL,
            tissue_mask BLOB NOT NULL,
            UNIQUE(run_id, dataset, path)
        );
        CREATE TABLE slide_verdicts(
            slide_id INTEGER NOT NULL REFERENCES slides(id),
            model_hash TEXT NOT NULL,
            piece INTEGER NOT NULL,
            rule TEXT NOT NULL,
            tiles INTEGER NOT NULL,
            score REAL,
            class_name TEXT NOT NULL,
            probabilities TEXT NOT NULL,
            PRIMARY KEY(slide_id, model_hash, piece)
        );
        CREATE TABLE slide_heatmaps(
            slide_id INTEGER NOT NULL REFERENCES slides(id),
            model_hash TEXT NOT NULL,
            explainer TEXT NOT NULL,
            downsample REAL NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            low REAL,
            high REAL,
            heatmap BLOB NOT NULL,
            PRIMARY KEY(slide_id, model_hash, explainer)
        );
        """,
        // 6: dataset-level comparisons: two models of a run on the same items ("models"), and a
        // run against a baseline run ("baseline": drift), per item and explainer.
        """
        CREATE TABLE comparisons(
            run_id INTEGER NOT NULL REFERENCES runs(id),
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id),
            explainer TEXT NOT NULL,
            model_a TEXT NOT NULL,
            model_b TEXT NOT NULL,
            reference TEXT,
            spearman REAL,
            ssim REAL,
            topk REAL,
            same_prediction INTEGER,
            PRIMARY KEY(run_id, name, item_id, explainer, model_a, model_b)
        );
        """,
        // 7: SpRAy (spectral relevance analysis): each heatmap's cluster within its class, and
        // per cluster its medoid, mean heatmap and the Clever-Hans test.
        """
        CREATE TABLE clusters(
            run_id INTEGER NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items(id),
            model_hash TEXT NOT NULL,
            explainer TEXT NOT NULL,
            class_index INTEGER NOT NULL,
            cluster INTEGER NOT NULL,
            medoid INTEGER NOT NULL,
            x REAL,
            y REAL,
            PRIMARY KEY(run_id, name, item_id, model_hash, explainer)
        );
        CREATE TABLE cluster_summaries(
            run_id INTEGER NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            model_hash TEXT NOT NULL,
            explainer TEXT NOT NULL,
            class_index INTEGER NOT NULL,
            cluster INTEGER NOT NULL,
            size INTEGER NOT NULL,
            medoid_item INTEGER NOT NULL REFERENCES items(id),
            flagged INTEGER NOT NULL,
            reasons TEXT NOT NULL,
            place TEXT NOT NULL,
            outside_share REAL,
            object_lift REAL,
            region_share REAL NOT NULL,
            grid INTEGER NOT NULL,
            mean_map TEXT NOT NULL,
            region TEXT NOT NULL,
            eigenvalues TEXT NOT NULL,
            neighbours INTEGER NOT NULL,
            PRIMARY KEY(run_id, name, model_hash, explainer, class_index, cluster)
        );
        """,
        // 8: the share of a slide's tissue view rejected as pen ink (a warning for the reader).
        """
        ALTER TABLE slides ADD COLUMN pen_fraction REAL NOT NULL DEFAULT 0;
        """,
        // 9: what a stochastic method measured about its own heatmap (JSON object, name → number:
        // LIME's and RISE's stability, fit_r2, samples), cached with the heatmap.
        """
        ALTER TABLE attributions ADD COLUMN diagnostics TEXT;
        """,
        // 10: a signed method's map kept signed (Int16 of v / max|v|) and its largest |value|,
        // for the report's diverging overlays.
        """
        ALTER TABLE attributions ADD COLUMN signed BLOB;
        ALTER TABLE attributions ADD COLUMN signed_max REAL;
        """,
        // 11: the curves behind the deletion/insertion AUCs and the randomization check, per heatmap.
        """
        CREATE TABLE curves(
            item_id INTEGER NOT NULL REFERENCES items(id),
            model_hash TEXT NOT NULL,
            explainer TEXT NOT NULL,
            kind TEXT NOT NULL,
            points TEXT NOT NULL,
            PRIMARY KEY(item_id, model_hash, explainer, kind)
        );
        """,
        // 12: the slide pointing game of each stitched map (share of the k most relevant tiles on
        // an annotated region, and k), and each tile's sharpness (variance of its Laplacian).
        """
        ALTER TABLE slide_heatmaps ADD COLUMN pointing REAL;
        ALTER TABLE slide_heatmaps ADD COLUMN pointing_k INTEGER;
        ALTER TABLE items ADD COLUMN sharpness REAL;
        """,
    ]
}
