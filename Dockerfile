# One image for every service of the project (scorer, api, feedback, retrainer, review).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml setup.py README.md ./
COPY streams ./streams
COPY features ./features
COPY models ./models
COPY services ./services
COPY loadtest ./loadtest
RUN pip install --no-cache-dir --no-deps -e .
ENTRYPOINT ["fraudctl"]
