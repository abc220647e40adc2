"""Perception: screen parsing (OCR), intent triage and the prompt-injection guard.

Where things live (import from the module; this package imports nothing
heavy on its own):

* ``screen``     TextElement, ScreenParser, find_text, read_lines, wait_for_text
* ``ocr``        RapidOcrReader (offline ONNX models), OcrScreenParser (cached,
                 reads only what changed), decode_frame
* ``triage``     Triager, CentroidTriager (WordLlama, offline), OpenAITriager,
                 CATEGORIES, RISK_BY_CATEGORY
* ``injection``  InjectionGuard, InjectionAssessment, THRESHOLD
* ``perceiver``  Perception: what the agent loop calls (triage, injection_risk)
* ``bench``      run_benchmarks
* ``cli``        register(app): ``deskhand perceive triage/read/injection``
* ``errors``     PerceptionError and its subclasses
"""
