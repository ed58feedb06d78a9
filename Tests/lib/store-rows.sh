# What two stores must agree on, for the shell tests that compare a sharded, merged or resumed
# run with an uninterrupted one (sourced by Tests/cli/run.sh and Tests/slurm/run.sh).
# rows STORE: every heatmap of the latest run (bytes as hex) with its item's prediction.
rows() { sqlite3 "$1" "select i.path, a.explainer, a.target, hex(a.heatmap), p.class_index, p.probabilities
  from attributions a join items i on i.id = a.item_id join predictions p on p.item_id = i.id
  where i.run_id = (select max(id) from runs) order by i.path, a.explainer"; }
# metric_rows STORE: every metric of the latest run.
metric_rows() { sqlite3 "$1" "select i.path, m.explainer, m.name, m.value from metrics m join items i on i.id = m.item_id
  where i.run_id = (select max(id) from runs) order by 1, 2, 3"; }
# items_in STORE: item rows in the store (0 when it cannot be read).
items_in() { sqlite3 "$1" 'select count(*) from items' 2>/dev/null || echo 0; }
