"""Archive-scale batches: `forensics-app batch` runs the same analysis as `analyze` on Ray Data.

`folder` (the output folder: append-only JSON lines, resume by SHA-256, merge into a case) needs no Ray;
`ray_pipeline` imports Ray and is imported only by the batch command, so the window and `analyze` never
need it.
"""
