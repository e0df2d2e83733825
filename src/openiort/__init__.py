"""openiort: open-source toolkit for breast intraoperative radiotherapy (IORT).

Research and education software. It is not a medical device and has not been cleared or
approved for clinical use.
"""

__version__ = "0.1.0"

RESEARCH_NOTICE = (
    "Research software, not a medical device: openiort has not been cleared or approved for "
    "clinical use. Every number must be checked independently before it is used for a patient."
)
# The patient page's version: the same status, addressed to the patient (the page shows verified
# figures only, so it does not ask the reader to check them).
PATIENT_NOTICE = (
    "Made with research software, not a medical device: openiort has not been cleared or "
    "approved for clinical use. Your care team decides your treatment."
)
