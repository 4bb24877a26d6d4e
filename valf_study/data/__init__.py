"""Data sets of the study: LungHist700 as released, a generated stand-in in the same layout,
user image folders, training-set samplers, and the input pipeline.

Every reader returns a pandas DataFrame with one row per image and at least the columns
``path`` (absolute path of the image file), ``label`` (int class index) and ``class_name``.
LungHist700 frames also carry ``superclass, subclass, resolution, image_id, patient_id,
image_path`` (path relative to the release root) and, once a split is attached, ``split``
(``"train"``, ``"val"`` or ``"test"``).
"""
