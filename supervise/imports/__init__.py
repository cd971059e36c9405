"""批量导入 (issue 16): a county's org tree, its points, its staff accounts and its historical
ledger from a spreadsheet — `supervise import orgs|points|users|cases FILE` and the admin page.

- `readers`: an uploaded XLSX or CSV (UTF-8 with or without BOM, GB18030/GBK) → header + rows;
- `base`: columns, row problems (第 N 行「列」：…), the plan of what would change, the scope;
- one module per kind (`orgs`, `points`, `users`, `cases`): its columns and its row checks;
- `service`: a file, all or nothing (every row checked first; one transaction; a dry run writes
  nothing);
- `templates`: the XLSX template of each kind (header, an example row, a sheet explaining the
  columns).
"""
