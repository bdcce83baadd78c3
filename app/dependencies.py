"""FastAPI dependencies: the objects the lifespan created, handed to endpoints."""

from typing import Annotated

from fastapi import Depends, Request

from app.engine import InferenceEngine
from app.pool import InferencePool
from app.schemas import ModelInfo
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> InferenceEngine:
    return request.app.state.engine


def get_pool(request: Request) -> InferencePool:
    return request.app.state.pool


def get_model_infos(request: Request) -> list[ModelInfo]:
    return request.app.state.model_infos


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[InferenceEngine, Depends(get_engine)]
PoolDep = Annotated[InferencePool, Depends(get_pool)]
ModelInfosDep = Annotated[list[ModelInfo], Depends(get_model_infos)]
