"""Patient selection and patient information: guideline verdicts, risk-adapted EBRT, evidence.

- :mod:`.variables` maps the guideline vocabulary onto the case vocabulary (one place);
- :mod:`.rules` loads and validates the versioned guideline files in ``guidelines/`` and the
  supplemental-EBRT policies in ``policies/``;
- :mod:`.eligibility` is the one evaluator: verdicts with reasons, missing fields, IORT support;
- :mod:`.pathology` re-evaluates after final pathology (TARGIT-A risk-adapted approach);
- :mod:`.outcomes` and :mod:`.burden` match published outcomes and treatment burden to a case;
- :mod:`.summary` writes the plain-language patient summary; :mod:`.section` feeds the report.
"""
