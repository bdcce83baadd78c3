"""FastAPI dependencies: the objects the lifespan created, handed to endpoints.

They are `async def` so FastAPI calls them on the event loop: a plain `def` dependency runs
on the thread pool, and those thread hops were most of what a cached answer cost.
"""

from typing import Annotated

from fastapi import Depends, Request

from app.answers import Answer, Answers
from app.claims import Claims
from app.engine import InferenceEngine
from app.pool import InferencePool
from app.schemas import ModelInfo
from app.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> InferenceEngine:
    return request.app.state.engine


async def get_pool(request: Request) -> InferencePool:
    return request.app.state.pool


async def get_model_infos(request: Request) -> list[ModelInfo]:
    return request.app.state.model_infos


async def get_answers(request: Request) -> Answers:
    return request.app.state.answers


async def get_models_answer(request: Request) -> Answer:
    return request.app.state.models_answer


async def get_limits_answer(request: Request) -> Answer:
    return request.app.state.limits_answer


async def get_claims(request: Request) -> Claims:
    return request.app.state.claims


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[InferenceEngine, Depends(get_engine)]
PoolDep = Annotated[InferencePool, Depends(get_pool)]
ModelInfosDep = Annotated[list[ModelInfo], Depends(get_model_infos)]
AnswersDep = Annotated[Answers, Depends(get_answers)]
ModelsAnswerDep = Annotated[Answer, Depends(get_models_answer)]
LimitsAnswerDep = Annotated[Answer, Depends(get_limits_answer)]
ClaimsDep = Annotated[Claims, Depends(get_claims)]
