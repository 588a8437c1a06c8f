@echo off
rem sheetreg: kasittele asiakkaiden pyynnot yhdella napsautuksella / process client requests
rem in one click (Windows). Double-click this file, or drag the workbook onto it.
rem
rem Runs "sheetreg requests WORKBOOK --process" on the configured workbook: writes the legal
rem deadlines, makes the access extract of every verified Access/Portability request, records
rem it in the Outcome cell, and opens the folder with the extracts in Explorer.
rem
rem Which workbook (first found wins):
rem   1. a workbook dragged onto this file (the first argument);
rem   2. the environment variable SHEETREG_WORKBOOK;
rem   3. the first line of workflows\workbook.txt beside this file (lines starting # skipped).
rem Optional: SHEETREG (the sheetreg program; default .venv\Scripts\sheetreg.exe of this
rem checkout, then sheetreg on PATH), SHEETREG_EXTRACTS (where extracts go; default extracts\
rem beside the workbook), SHEETREG_NO_OPEN=1 (do not open the folder), SHEETREG_NO_PAUSE=1.
rem Exit code: sheetreg's (0 nothing to act on, 1 something to act on, 2 unusable workbook).
setlocal EnableExtensions
chcp 65001 >nul
set "HERE=%~dp0"
set "ROOT=%HERE%.."
set "WORKBOOK="
if not "%~1"=="" if exist "%~1" set "WORKBOOK=%~f1"
if not defined WORKBOOK if defined SHEETREG_WORKBOOK set "WORKBOOK=%SHEETREG_WORKBOOK%"
if not defined WORKBOOK if exist "%HERE%workbook.txt" (
  for /f "usebackq eol=# delims=" %%L in ("%HERE%workbook.txt") do (
    if not defined WORKBOOK set "WORKBOOK=%%~L"
  )
)
if not defined WORKBOOK (
  echo sheetreg: tyokirjaa ei ole maaritetty / no workbook configured.
  echo   Aseta SHEETREG_WORKBOOK tai kirjoita polku tiedostoon / set SHEETREG_WORKBOOK or write its path in:
  echo   %HERE%workbook.txt
  set "STATUS=2"
  goto :done
)

set "PROGRAM=%SHEETREG%"
if not defined PROGRAM if exist "%ROOT%\.venv\Scripts\sheetreg.exe" set "PROGRAM=%ROOT%\.venv\Scripts\sheetreg.exe"
if not defined PROGRAM set "PROGRAM=sheetreg"

for %%W in ("%WORKBOOK%") do set "FOLDER=%%~dpWextracts"
if defined SHEETREG_EXTRACTS (
  set "FOLDER=%SHEETREG_EXTRACTS%"
  "%PROGRAM%" requests "%WORKBOOK%" --process --out "%SHEETREG_EXTRACTS%"
) else (
  "%PROGRAM%" requests "%WORKBOOK%" --process
)
set "STATUS=%ERRORLEVEL%"

if not exist "%FOLDER%" for %%W in ("%WORKBOOK%") do set "FOLDER=%%~dpW"
echo.
echo Otteet / extracts: %FOLDER%
if not defined SHEETREG_NO_OPEN if not defined CI start "" explorer "%FOLDER%"

:done
if not defined SHEETREG_NO_PAUSE if not defined CI pause
exit /b %STATUS%
